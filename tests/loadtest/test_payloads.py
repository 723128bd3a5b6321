"""Request bodies and routes for each endpoint kind."""

from __future__ import annotations

import pytest

from modelserve_loadtest.errors import BadArguments
from modelserve_loadtest.payloads import bodies, route


def test_each_endpoint_has_its_route_and_body() -> None:
    assert route("analyze", None) == route("analyze-list", None) == "/analyze-sentiment"
    assert route("oip", "m") == "/v2/models/m/infer"
    assert bodies(["a"], "analyze", None) == [{"text": "a"}]
    assert bodies(["a", "b"], "analyze-list", "m") == [
        {"texts": ["a"], "model": "m"},
        {"texts": ["b"], "model": "m"},
    ]
    (oip,) = bodies(["a"], "oip", "m")
    assert oip["inputs"][0]["data"] == ["a"] and oip["inputs"][0]["shape"] == [1]
    assert route("oip-batched", "m") == "/v2/models/m/infer"
    (batched,) = bodies(["a"], "oip-batched", "m")
    assert batched["inputs"][0]["data"] == ["a"] and batched["inputs"][0]["shape"] == [1, 1]


def test_an_unknown_endpoint_names_the_known_ones() -> None:
    with pytest.raises(BadArguments, match="analyze, analyze-list, oip, oip-batched"):
        route("grpc", None)
