import pytest

from modelserve_predictor.errors import ConfigError
from modelserve_predictor.placement import Device, parse_gpu_map, plan_workers


def test_cpu_workers_divide_the_cores_between_them() -> None:
    (single,) = plan_workers(["a", "b"], cpu_workers=1, cpu_count=2)
    assert single.threads == 2 and single.device == Device("cpu")
    assert single.models == {"a": Device("cpu"), "b": Device("cpu")}
    assert single.cuda_visible_devices is None
    plans = plan_workers(["a"], cpu_workers=2, cpu_count=2)
    assert [p.worker_index for p in plans] == [1, 2]  # BentoML counts workers from 1
    assert [p.threads for p in plans] == [1, 1]
    assert [p.threads for p in plan_workers(["a"], cpu_workers=4, cpu_count=2)] == [1] * 4


def test_two_workers_per_gpu_on_four_gpus() -> None:
    plans = plan_workers(["a"], gpus=[0, 1, 2, 3], workers_per_gpu=2, cpu_count=16)
    assert [str(p.device) for p in plans] == [
        "cuda:0",
        "cuda:0",
        "cuda:1",
        "cuda:1",
        "cuda:2",
        "cuda:2",
        "cuda:3",
        "cuda:3",
    ]
    assert all(p.threads == 2 for p in plans)
    assert [p.cuda_visible_devices for p in plans][2:4] == ["1", "1"]
    assert all(p.local_device("a") == Device("cuda", 0) for p in plans)


def test_models_limited_to_some_gpus_are_spread_over_them() -> None:
    plans = plan_workers(
        ["a", "b"],
        gpus=[0, 1, 2, 3],
        workers_per_gpu=2,
        model_gpus={"a": [0, 1], "b": [2]},
        cpu_count=8,
    )
    assert {p.models["b"] for p in plans} == {Device("cuda", 2)}
    assert {p.models["a"] for p in plans} == {Device("cuda", 0), Device("cuda", 1)}
    on_gpu0 = plans[0]
    assert on_gpu0.models["a"] == Device("cuda", 0)  # a worker keeps a model on its own GPU
    assert on_gpu0.cuda_visible_devices == "0,2"
    assert on_gpu0.local_device("b") == Device("cuda", 1)  # renumbered after pinning
    on_gpu3 = plans[-1]
    assert on_gpu3.device == Device("cuda", 3)
    visible = on_gpu3.cuda_visible_devices.split(",")
    assert visible[0] == "3" and set(visible) == {"3", str(on_gpu3.models["a"].index), "2"}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_gpus": {"zzz": [0]}, "gpus": [0]}, "not served"),
        ({"model_gpus": {"a": [0]}}, "no GPU is available"),
        ({"model_gpus": {"a": [5]}, "gpus": [0, 1]}, "not a non-empty subset"),
        ({"gpus": [0, 0]}, "duplicates"),
        ({"cpu_workers": 0}, "at least 1"),
        ({"gpus": [0], "workers_per_gpu": 0}, "at least 1"),
    ],
)
def test_impossible_maps_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_workers(["a"], **kwargs)


def test_parse_gpu_map() -> None:
    assert parse_gpu_map("a=0,1; b=2") == {"a": [0, 1], "b": [2]}
    assert parse_gpu_map("") == {}
    with pytest.raises(ConfigError):
        parse_gpu_map("a=x")
    with pytest.raises(ConfigError):
        parse_gpu_map("a=")
