import json
from pathlib import Path

import pytest

from modelserve_predictor.bench import BenchPlan, run_bench
from modelserve_predictor.cli import cli
from modelserve_registry.pipeline import export_and_push
from modelserve_runtime.manifest import Variant
from modelserve_runtime.store import Registry
from tests.model_registry.conftest import make_classifier


def test_bench_writes_a_table_per_variant_and_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry.open(str(tmp_path / "registry"))
    export_and_push(
        registry, make_classifier(tmp_path / "src"), "tiny", [Variant.ONNX_FP32, Variant.ONNX_INT8]
    )
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "cache"))
    plan = BenchPlan(
        model="tiny",
        out=tmp_path / "out",
        batch_sizes=(1, 4),
        fixed_tokens=16,
        samples=16,
        rounds=2,
        threads=1,
        registry_uri=str(tmp_path / "registry"),
    )
    result = run_bench(plan)
    rows = {(r["variant"], r["batch_size"]): r for r in result["rows"]}
    assert set(rows) == {(v, b) for v in ("onnx-fp32", "onnx-int8") for b in (1, 4)}
    assert all(r["samples_per_s"] > 0 and r["rounds"] == 2 for r in rows.values())
    assert rows[("onnx-int8", 1)]["size_mb"] < rows[("onnx-fp32", 1)]["size_mb"]
    assert json.loads((tmp_path / "out" / "bench.json").read_text()) == result
    table = (tmp_path / "out" / "bench.md").read_text()
    assert "| onnx-int8 | 4 |" in table and "padded to 16 tokens" in table


def test_bench_refuses_batch_sizes_that_are_not_positive_integers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for wrong in ("1,x", "0,4"):
        with pytest.raises(SystemExit) as exit_info:
            cli(["bench", "tiny", "--batch-sizes", wrong])
        assert exit_info.value.code == 2
        assert "--batch-sizes" in capsys.readouterr().err
