"""What a chaos run exports live (`chaos run --metrics-port`)."""

PREFIX = "chaos"
DISRUPTIONS_TOTAL = f"{PREFIX}_disruptions_total"
TARGET_READY = f"{PREFIX}_target_ready"
RECOVERY_SECONDS = f"{PREFIX}_recovery_seconds"
LABELS = ("experiment",)
