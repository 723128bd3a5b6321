"""What a load run exports live (`loadtest run --metrics-port`). Latency counts from the
intended send time."""

PREFIX = "loadtest"
NOMINAL_RATE = f"{PREFIX}_nominal_rate"
SLO_SECONDS = f"{PREFIX}_slo_seconds"
ARRIVALS_TOTAL = f"{PREFIX}_arrivals_total"
RESPONSES_TOTAL = f"{PREFIX}_responses_total"
LATENCY_SECONDS = f"{PREFIX}_latency_seconds"
WITHIN_SLO_TOTAL = f"{PREFIX}_within_slo_total"
IN_FLIGHT = f"{PREFIX}_in_flight"
SEND_LAG_SECONDS = f"{PREFIX}_send_lag_seconds"

LABELS = ("scenario",)
# ok: 2xx; rejected: 429/503 (the server shed load, as designed); failed: any other answer or
# no answer; dropped: the generator's in-flight cap was full, the request never left.
OUTCOMES = ("ok", "rejected", "failed", "dropped")

LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
