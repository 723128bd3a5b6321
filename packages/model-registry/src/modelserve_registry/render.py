"""Human-readable tables for the CLI (rich) and the JSON shapes behind `--json`."""

from __future__ import annotations

from rich.table import Table

from modelserve_runtime.manifest import ModelManifest, Validation, VariantManifest


def megabytes(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


def _fmt(value: float | None, digits: int = 4) -> str:
    return (
        "-"
        if value is None
        else f"{value:.{digits}g}"
        if abs(value) < 1e-2
        else f"{value:.{digits}f}"
    )


def variant_row(variant: VariantManifest) -> list[str]:
    check = variant.validation
    status = "-" if check is None else ("ok" if check.passed else "FAILED (forced)")
    return [
        variant.variant.value,
        megabytes(variant.size_bytes),
        ", ".join(variant.runtime.devices),
        "-" if check is None else _fmt(check.max_abs_diff, 3),
        "-" if check is None or check.argmax_agreement is None else f"{check.argmax_agreement:.4f}",
        "-" if check is None or check.min_cosine is None else f"{check.min_cosine:.5f}",
        _with_single(check, "accuracy"),
        _with_single(check, "macro_f1"),
        status,
    ]


def _with_single(check: Validation | None, figure: str) -> str:
    """'0.6634', or '0.6634 (0.6580 1/call)' when the variant was also checked one text per
    call."""
    value = None if check is None else getattr(check, figure)
    if value is None:
        return "-"
    single = check.one_text_per_call
    if single is None or getattr(single, figure) is None:
        return f"{value:.4f}"
    return f"{value:.4f} ({getattr(single, figure):.4f} 1/call)"


def manifest_table(manifest: ModelManifest, aliases: list[str]) -> Table:
    title = f"{manifest.name}:{manifest.version}"
    if aliases:
        title += f"  ({', '.join('@' + a for a in aliases)})"
    if manifest.synthetic:
        title += "  SYNTHETIC"
    table = Table(
        title=title,
        caption=f"{manifest.task}; max {manifest.max_sequence_length} "
        f"tokens; labels: {', '.join(manifest.labels) or '-'}",
    )
    for column in [
        "variant",
        "size",
        "devices",
        "max |diff|",
        "argmax agree",
        "min cosine",
        "accuracy",
        "macro-F1",
        "check",
    ]:
        table.add_column(column, justify="left" if column in {"variant", "devices"} else "right")
    for variant in manifest.variants.values():
        table.add_row(*variant_row(variant))
    return table


def summary(manifest: ModelManifest, aliases: list[str]) -> dict:
    """The `--json` form of one version: the manifest plus its aliases."""
    return {**manifest.model_dump(mode="json"), "aliases": aliases}
