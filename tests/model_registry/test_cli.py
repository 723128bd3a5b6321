"""The `registry` command: JSON output for scripts, one error line and an exit code per failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelserve_registry.cli import cli
from modelserve_runtime.manifest import Variant
from modelserve_runtime.store import Registry, _blob_key


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_list_show_tag_pull_and_rm_as_json(
    store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = str(store_copy)
    code, out, _ = run(capsys, "--uri", uri, "list", "--json")
    assert code == 0
    (entry,) = json.loads(out)
    assert entry["name"] == "tiny" and entry["version"] == 1
    assert len(entry["variants"]) == len(Variant)
    assert entry["variants"]["onnx-int8"]["validation"]["passed"] is True

    assert run(capsys, "--uri", uri, "tag", "tiny:1", "production", "--json")[0] == 0
    code, out, _ = run(capsys, "--uri", uri, "show", "tiny@production", "--json")
    assert code == 0 and json.loads(out)["aliases"] == ["production"]

    code, out, _ = run(
        capsys,
        "--uri",
        uri,
        "pull",
        "tiny@production",
        "--variant",
        "onnx-fp32",
        "--to",
        str(tmp_path / "pulled"),
        "--json",
    )
    pulled = json.loads(out)
    assert code == 0 and pulled["variant"] == "onnx-fp32"
    assert (Path(pulled["path"]) / "model.onnx").stat().st_size > 0

    code, _, err = run(capsys, "--uri", uri, "rm", "tiny:1")
    assert code == 8 and "production" in err
    assert run(capsys, "--uri", uri, "rm", "tiny:1", "--force")[0] == 0
    assert json.loads(run(capsys, "--uri", uri, "list", "--json")[1]) == []


def test_push_of_a_pulled_folder_makes_a_new_version(
    store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = str(store_copy)
    run(capsys, "--uri", uri, "pull", "tiny", "--variant", "onnx-int8", "--to", str(tmp_path / "p"))
    code, out, _ = run(
        capsys,
        "--uri",
        uri,
        "push",
        str(tmp_path / "p"),
        "--name",
        "tiny-copy",
        "--variant",
        "onnx-int8",
        "--json",
    )
    pushed = json.loads(out)
    assert code == 0 and pushed["name"] == "tiny-copy" and list(pushed["variants"]) == ["onnx-int8"]
    (tmp_path / "p" / "model.onnx").write_bytes(b"edited")
    code, _, err = run(
        capsys,
        "--uri",
        uri,
        "push",
        str(tmp_path / "p"),
        "--name",
        "tiny-copy",
        "--variant",
        "onnx-int8",
    )
    assert code == 2 and "model.onnx changed" in err


def test_verify_fails_naming_the_file_after_one_byte_changes(
    store_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = str(store_copy)
    assert run(capsys, "--uri", uri, "verify")[0] == 0
    manifest = Registry.open(uri).manifest("tiny")
    target = manifest.variants["onnx-int8"].files[0]
    blob = store_copy / _blob_key(target.sha256)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    code, out, err = run(capsys, "--uri", uri, "verify", "--json")
    assert code == 4
    assert json.loads(out)["ok"] is False
    assert "tiny:1 model.onnx" in err and "corrupt" in err


@pytest.mark.parametrize(
    ("args", "exit_code", "message"),
    [
        (["show", "../../etc/passwd"], 2, "invalid model name"),
        (["show", "missing"], 3, "not in the registry"),
        (["show", "tiny:9"], 3, "no version 9"),
        (["tag", "tiny", "production"], 2, "NAME:VERSION"),
        (["tag", "tiny:1", "../evil"], 2, "invalid alias"),
        (["verify", "missing"], 3, "not in the registry"),
        (["export", "{tmp}/nowhere", "--name", "x"], 6, "not a Hugging Face model folder"),
        (["export", "{tmp}", "--name", "Bad Name"], 2, "invalid model name"),
    ],
)
def test_errors_are_one_line_with_their_exit_code(
    store_copy: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    args: list[str],
    exit_code: int,
    message: str,
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = run(capsys, "--uri", str(store_copy), *args)
    assert code == exit_code, err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_bad_variant_and_missing_arguments_exit_2(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as raised:
        cli(["pull", "tiny", "--variant", "onnx-int4", "--to", "x"])
    assert raised.value.code == 2 and "unknown variant" in capsys.readouterr().err


def test_the_console_script_is_installed_and_reads_registry_uri(store_copy: Path) -> None:
    registry = Path(sys.executable).parent / "registry"
    env = {**os.environ, "REGISTRY_URI": str(store_copy)}
    listed = subprocess.run(
        [registry, "list", "--json"], env=env, capture_output=True, text=True, timeout=120
    )
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["name"] == "tiny"
    failed = subprocess.run(
        [registry, "show", "nope"], env=env, capture_output=True, text=True, timeout=120
    )
    assert failed.returncode == 3 and failed.stderr.strip().startswith("error: model 'nope'")


def test_rm_keeps_blobs_until_gc_and_never_frees_the_number(
    store_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    uri = str(store_copy)
    blobs = sorted((store_copy / "blobs").rglob("*/*/*"))
    size = sum(p.stat().st_size for p in blobs)
    pulled = str(tmp_path / "p")
    assert (
        run(capsys, "--uri", uri, "pull", "tiny", "--variant", "onnx-int8", "--to", pulled)[0] == 0
    )
    code, out, _ = run(capsys, "--uri", uri, "rm", "tiny:1", "--json")
    assert code == 0 and json.loads(out)["removed"] == "tiny:1"
    assert sorted((store_copy / "blobs").rglob("*/*/*")) == blobs  # rm leaves the blobs

    code, out, _ = run(capsys, "--uri", uri, "gc", "--json")  # default grace: 1 h
    kept = json.loads(out)
    assert code == 0 and kept["deleted"] == [] and len(kept["kept_young"]) == len(blobs)
    code, out, _ = run(capsys, "--uri", uri, "gc", "--grace-seconds", "0", "--json")
    gone = json.loads(out)
    assert code == 0 and sorted(gone["deleted"]) == sorted(p.name for p in blobs)
    assert gone["freed_bytes"] == size
    assert list((store_copy / "blobs").rglob("*/*/*")) == []

    push = ["push", pulled, "--name", "tiny", "--variant", "onnx-int8", "--json"]
    code, out, _ = run(capsys, "--uri", uri, *push)
    assert code == 0 and json.loads(out)["version"] == 2  # 1 stays taken
    assert run(capsys, "--uri", uri, "verify")[0] == 0


def test_gc_refuses_a_negative_grace_and_is_in_the_help(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as raised:
        cli(["gc", "--grace-seconds", "-1"])
    assert raised.value.code == 2 and "seconds >= 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli(["--help"])
    assert ",gc," in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli(["gc", "--help"])
    assert "REGISTRY_GC_GRACE_SECONDS" in capsys.readouterr().out
