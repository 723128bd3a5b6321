import pytest

from modelserve_runtime.errors import InvalidReference
from modelserve_runtime.references import ModelReference


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sentiment-minilm", ModelReference("sentiment-minilm")),
        ("roberta-base-synthetic:12", ModelReference("roberta-base-synthetic", version=12)),
        ("m1@production", ModelReference("m1", alias="production")),
        ("a.b_c-d", ModelReference("a.b_c-d")),
    ],
)
def test_parse_accepts_valid_references(text: str, expected: ModelReference) -> None:
    assert ModelReference.parse(text) == expected
    assert str(ModelReference.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "../etc",
        "a/b",
        "/abs",
        "UPPER",
        "",
        "x:0",
        "x:-1",
        "x:1.5",
        "x@",
        "x@1",
        "x@../p",
        "a..b",
        "-lead",
        "trail-",
        "x" * 65,
        "x:1@y",
        "名前",
    ],
)
def test_parse_rejects_malformed_or_unsafe_references(text: str) -> None:
    with pytest.raises(InvalidReference):
        ModelReference.parse(text)
