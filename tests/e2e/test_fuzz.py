"""Hostile and random input against the real predictor: every answer is below 500, every
error is the documented JSON `{"error", "type"}`, and the server goes on serving."""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import Server, worker_pids

# What the session `server` fixture (tests/conftest.py) serves; its limits shape the corpus.
SERVED = ("tiny-sentiment", "tiny-embed", "big-batch", "big-slow")
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as session:
        yield session


def error_problem(status: int, content_type: str, body: bytes) -> str | None:
    """Why an answer breaks the contract (a 5xx, or an error that is not the documented
    JSON), or None."""
    if status >= 500:
        return f"server error {status}: {body[:300]!r}"
    if status < 400:
        return None
    if not content_type.lower().startswith("application/json"):
        return f"{status} error with content-type {content_type!r}: {body[:300]!r}"
    try:
        document = json.loads(body)
    except ValueError:
        return f"{status} error body is not JSON: {body[:300]!r}"
    if not (
        isinstance(document, dict)
        and isinstance(document.get("error"), str)
        and isinstance(document.get("type"), str)
    ):
        return f"{status} error body lacks string 'error' and 'type': {document!r}"
    return None


def check(response: httpx.Response, what: object) -> None:
    event(f"status {response.status_code}")  # shown by --hypothesis-show-statistics
    problem = error_problem(
        response.status_code, response.headers.get("content-type", ""), response.content
    )
    assert problem is None, f"{problem}\nrequest: {what!r}"


def encode(document: Any) -> bytes:
    """Lone surrogates travel as \\ud800 escapes; NaN and Infinity as their literals."""
    return json.dumps(document, ensure_ascii=True, allow_nan=True).encode()


# -- strategies -----------------------------------------------------------------------------

ODD_TEXTS = [
    *["", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\udbff\udfff", "\ufeff", "\u202egood"],
    *["text", "TEXT", "BYTES", "NaN", "-1", "../../etc/passwd", "%00", "good"],
    *["\U0001f4a5" * 50, "1" * 300, "x" * 5001],
]
DATATYPES = [
    *["BYTES", "BOOL", "UINT8", "UINT64", "INT8", "INT32", "INT64", "FP16", "FP32", "FP64"],
    *["BF16", "bytes", "STRING", ""],
]
PARAMETER_KEYS = [
    *["binary_data_output", "binary_data", "binary_data_size", "timeout", "ready", ""],
    *["version", "alias", "variant"],
]
OUTPUT_NAMES = ["logits", "label", "truncated", "embeddings"]
BIG_INTS = [-1, 0, 1, 2**31, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, -(10**40)]

text_values = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zs"]), max_size=8),
    st.sampled_from(ODD_TEXTS),
)
numbers = st.one_of(
    st.integers(),
    st.sampled_from(BIG_INTS),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text_values)
junk = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text_values, inner, max_size=4),
    max_leaves=12,
)
parameters = st.one_of(
    st.dictionaries(st.sampled_from(PARAMETER_KEYS) | text_values, scalars | junk, max_size=4),
    st.dictionaries(st.sampled_from(PARAMETER_KEYS), scalars, max_size=3),
    junk,
)
shapes = st.one_of(
    st.lists(st.integers(-3, 12), max_size=4),
    st.lists(st.sampled_from(BIG_INTS) | st.booleans() | st.floats(), max_size=3),
    junk,
)
nested_texts = st.recursive(
    st.lists(text_values | scalars, max_size=6),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=10,
)


def often(valid: st.SearchStrategy, invalid: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the valid value, so that bodies get past the first check and deep into the
    server; sometimes anything at all."""
    return st.one_of(valid, valid, valid, invalid)


@st.composite
def tensors(draw: st.DrawFn) -> Any:
    tensor: dict[str, Any] = {}
    items = draw(st.lists(often(st.sampled_from(["good", "bad", "fine"]), text_values), max_size=9))
    layout = draw(st.sampled_from(["flat", "row", "column", "random"]))
    if layout == "flat":
        shape, data = [len(items)], items
    elif layout == "row":
        shape, data = [1, len(items)], [items]
    elif layout == "column":
        shape, data = [len(items), 1], [[item] for item in items]
    else:
        shape, data = draw(shapes), draw(nested_texts)
    fields = {
        "name": often(st.just("text"), text_values | junk),
        "datatype": often(st.just("BYTES"), st.sampled_from(DATATYPES) | junk),
        "shape": often(st.just(shape), shapes),
        "data": often(st.just(data), nested_texts | junk),
        "parameters": parameters,
    }
    for key, strategy in fields.items():
        if draw(st.integers(0, 9)) > (7 if key == "parameters" else 0):
            tensor[key] = draw(strategy)
    if draw(st.integers(0, 19)) == 0:
        tensor[draw(text_values)] = draw(junk)
    return tensor


@st.composite
def mutated_bodies(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(junk)  # not an object at all
    body: dict[str, Any] = {}
    outputs = st.lists(
        st.fixed_dictionaries(
            {},
            optional={"name": often(st.sampled_from(OUTPUT_NAMES), junk), "parameters": parameters},
        ),
        max_size=4,
    )
    fields = {
        "inputs": often(st.lists(tensors(), min_size=1, max_size=1), st.lists(tensors()) | junk),
        "id": often(text_values, junk),
        "outputs": often(outputs, junk),
        "parameters": parameters,
    }
    for key, strategy in fields.items():
        if key == "inputs" or draw(st.booleans()):
            if key == "inputs" and draw(st.integers(0, 14)) == 0:
                continue
            body[key] = draw(strategy)
    return body


clean_texts = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=60
).filter(str.strip)


@st.composite
def well_formed_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """Requests a served model answers (200), unless the outputs asked for are not its."""
    items = draw(st.lists(clean_texts, min_size=1, max_size=8))
    shape, data = draw(
        st.sampled_from(
            [
                ([len(items)], items),
                ([1, len(items)], [items]),
                ([len(items), 1], [[i] for i in items]),
            ]
        )
    )
    body: dict[str, Any] = {
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": shape, "data": data}]
    }
    if draw(st.booleans()):
        body["id"] = draw(st.text(max_size=20) | st.sampled_from(ODD_TEXTS))
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from(OUTPUT_NAMES), min_size=1, max_size=3, unique=True))
        body["outputs"] = [{"name": name} for name in names]
    if draw(st.booleans()):
        body["parameters"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "binary_data_output": st.booleans(),
                    "timeout": st.integers(10**7, 10**9),
                    "custom": scalars,
                },
            )
        )
    return body


random_names = st.one_of(
    st.text(st.characters(codec="ascii", categories=["L", "N", "P"]), min_size=1, max_size=20),
    st.text(min_size=1, max_size=12),
    st.sampled_from(["..", ".", "%", "a b", "x" * 300, "\x00", "\ud800", "UPPER"]),
).filter(lambda name: not any(known in name.lower() for known in SERVED))
model_names = st.one_of(st.sampled_from(SERVED), random_names)
versions = st.one_of(
    st.sampled_from(["1", "2", "0", "-1", "01", "1.0", "latest", str(2**64), "1" * 5000]),
    st.text(min_size=1, max_size=10),
)


def segment(name: str) -> str:
    return quote(name.encode("utf-8", "surrogatepass"), safe="")


@st.composite
def infer_requests(draw: st.DrawFn) -> tuple[str, Any]:
    """(path, body): half well-formed requests to a served model (most answered 200, so the
    fuzz reaches the model), the rest with a wrong name, a wrong version or a mangled body."""
    kind = draw(st.sampled_from(["well-formed"] * 5 + ["name", "version"] + ["mutated"] * 3))
    name = draw(random_names if kind == "name" else st.sampled_from(SERVED))
    version = draw(versions if kind == "version" else st.sampled_from([None, "1"]))
    body = draw(mutated_bodies() if kind == "mutated" else well_formed_bodies())
    path = f"/v2/models/{segment(name)}"
    if version is not None:
        path += f"/versions/{segment(version)}"
    return f"{path}/infer", body


# -- property-based fuzz --------------------------------------------------------------------


@FUZZ
@given(request=infer_requests())
def test_fuzzed_infer_bodies_get_a_4xx_or_an_answer(
    client: httpx.Client, request: tuple[str, Any]
) -> None:
    path, body = request
    content = encode(body)
    response = client.post(path, content=content, headers=JSON)
    check(response, ("POST", path, content[:2000]))
    if response.status_code == 200 and "inference-header-content-length" not in response.headers:
        assert isinstance(response.json()["outputs"], list), response.text


repository_bodies = st.one_of(
    st.none(),
    junk,
    st.fixed_dictionaries({}, optional={"parameters": parameters, "ready": scalars | junk}),
)


@FUZZ
@given(route=st.sampled_from(["index", "load", "unload"]), name=model_names, body=repository_bodies)
def test_fuzzed_repository_requests_get_a_4xx_or_an_answer(
    client: httpx.Client, route: str, name: str, body: Any
) -> None:
    if name in SERVED:  # the shared server must go on serving its models as configured
        if route == "load":  # an unknown parameter: refused before anything changes
            given_parameters = body.get("parameters") if isinstance(body, dict) else None
            extra = given_parameters if isinstance(given_parameters, dict) else {}
            body = {"parameters": {**extra, "not-a-load-parameter": 1}}
        elif route == "unload" and (body is None or isinstance(body, dict)):
            body = [body]  # not an object: refused before anything changes
    if route == "index":
        path = "/v2/repository/index"
    else:
        path = f"/v2/repository/models/{segment(name)}/{route}"
    content = b"" if body is None else encode(body)
    response = client.post(path, content=content, headers=JSON)
    check(response, ("POST", path, content[:2000]))
    if route != "index":  # no such model in the registry, or a served one left as it was
        assert response.status_code != 200, (path, content[:2000])


@FUZZ
@given(
    route=st.sampled_from(["server", "live", "ready", "model", "version", "model-ready"]),
    name=model_names,
    version=versions,
)
def test_fuzzed_health_and_metadata_routes_answer_below_500(
    client: httpx.Client, route: str, name: str, version: str
) -> None:
    model = f"/v2/models/{segment(name)}"
    path = {
        "server": "/v2",
        "live": "/v2/health/live",
        "ready": "/v2/health/ready",
        "model": model,
        "version": f"{model}/versions/{segment(version)}",
        "model-ready": f"{model}/ready",
    }[route]
    response = client.get(path)
    check(response, ("GET", path))
    if route in ("server", "live", "ready") or (route == "model-ready" and name in SERVED):
        assert response.status_code == 200, (path, response.text)


# -- the hostile corpus ---------------------------------------------------------------------


@dataclass(frozen=True)
class RawAnswer:
    status: int | None  # None: the connection closed without an answer
    headers: dict[str, str]
    body: bytes
    seconds: float


def raw_exchange(
    url: str, head: bytes, rest: bytes = b"", timeout_s: float = 10.0, pause_s: float = 2.0
) -> RawAnswer:
    """Sends `head` on a fresh socket; when `rest` is given, waits up to `pause_s` for an
    early answer (a server may refuse a request from its first bytes), then sends `rest`.
    Reads until the connection closes or a complete response has arrived."""
    address = urlsplit(url)
    started = time.monotonic()
    received = b""
    with socket.create_connection((address.hostname, address.port), timeout=timeout_s) as sock:
        try:
            sock.sendall(head)
            if rest:
                sock.settimeout(pause_s)
                try:
                    received = sock.recv(65536)
                except TimeoutError:
                    sock.settimeout(timeout_s)
                    sock.sendall(rest)
                sock.settimeout(timeout_s)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what it answered is still to be read
        while received == b"" or not _complete(received):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                pytest.fail(
                    f"no complete answer in {timeout_s} s; got {received[:300]!r} "
                    f"for {head[:200]!r}"
                )
            if not chunk:
                break
            received += chunk
    seconds = time.monotonic() - started
    if not received:
        return RawAnswer(None, {}, b"", seconds)
    head_bytes, _, body = received.partition(b"\r\n\r\n")
    status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return RawAnswer(int(status_line.split()[1]), headers, body, seconds)


def _complete(received: bytes) -> bool:
    head, found, body = received.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False  # no length: the server ends the body by closing


@dataclass(frozen=True)
class Case:
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))
    expect: frozenset[int] = frozenset()  # empty: any status below 500
    raw: tuple[bytes, bytes] | None = None  # (head, rest) sent over a socket instead
    may_close: bool = False  # closing the connection without an answer is also fine


INFER = "/v2/models/tiny-sentiment/infer"
ANALYZE = "/analyze-sentiment"
GZIP = {**JSON, "content-encoding": "gzip"}


def oip(*texts: Any, shape: Any = None, **extra: Any) -> bytes:
    tensor = {"name": "text", "datatype": "BYTES", "shape": shape or [len(texts)], "data": texts}
    return encode({"inputs": [tensor], **extra})


def oip_raw(shape: str = "[1]", data: str = '["good"]', tail: str = "") -> bytes:
    """An infer body written by hand, for what json.dumps will not write."""
    tensor = f'{{"name": "text", "datatype": "BYTES", "shape": {shape}, "data": {data}}}'
    return f'{{"inputs": [{tensor}]{tail}}}'.encode()


def nested(depth: int, leaf: str = '"good"') -> str:
    return "[" * depth + leaf + "]" * depth


def http(method: str, path: str, version: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} {version}", *(f"{k}: {v}" for k, v in headers.items())]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def hostile(
    name: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    expect: tuple[int, ...] = (),
    raw: tuple[bytes, bytes] | None = None,
    may_close: bool = False,
) -> Any:
    headers = dict(JSON) if headers is None else headers
    return pytest.param(Case(path, body, headers, frozenset(expect), raw, may_close), id=name)


GOOD_GZIP = gzip.compress(oip("good"))
BOMB = gzip.compress(oip("a" * 20_000_000), compresslevel=9)  # about 20 KB, inflates to 20 MB
BIG_HEADER = b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n"
BIG_URL = b"GET /v2/models/" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
# The first 20 KB, then (unless the server has answered within 2 s) the rest: a head that
# arrives in several reads, as over any real network (h11 alone refuses one over 16 KiB).
SPLIT = 20_000
LOAD = "/v2/repository/models"

CASES = [
    hostile(
        "invalid-utf8-oip",
        INFER,
        oip_raw(data='["goXXod"]').replace(b"XX", b"\xff\xfe"),
        expect=(400,),
    ),
    hostile("invalid-utf8-analyze", ANALYZE, b'{"text": "go\xc3\x28od"}', expect=(400,)),
    hostile("utf8-encoded-surrogate-embed", "/embed", b'{"text": "\xed\xa0\x80"}', expect=(400,)),
    hostile("nul-in-text-oip", INFER, oip("a\x00b")),
    hostile("nul-in-text-analyze", ANALYZE, encode({"text": "a\x00b"})),
    hostile("only-nul-oip", INFER, oip("\x00")),
    hostile("one-mb-text-oip", INFER, oip("x" * 1_000_000), expect=(200, 413)),
    hostile("one-mb-text-analyze", ANALYZE, encode({"text": "x" * 1_000_000}), expect=(200, 413)),
    hostile("ten-thousand-texts-oip", INFER, oip(*["t"] * 10_000), expect=(413,)),
    hostile("ten-thousand-texts-embed", "/embed", encode({"texts": ["t"] * 10_000}), expect=(413,)),
    hostile("text-plain-oip", INFER, oip("good"), {"content-type": "text/plain"}, (415,)),
    hostile(
        "text-plain-analyze", ANALYZE, b'{"text": "good"}', {"content-type": "text/plain"}, (415,)
    ),
    hostile("application-xml", INFER, b"<inputs/>", {"content-type": "application/xml"}, (415,)),
    hostile(
        "multipart-analyze",
        ANALYZE,
        b'--x\r\nContent-Disposition: form-data; name="text"\r\n\r\nhi\r\n--x--\r\n',
        {"content-type": "multipart/form-data; boundary=x"},
        (415,),
    ),
    hostile(
        "multipart-junk-oip",
        INFER,
        b"\x00\x01junk",
        {"content-type": "multipart/form-data"},
        (415,),
    ),
    hostile("no-content-type-analyze", ANALYZE, b'{"text": "good"}', {}, (200,)),
    hostile("no-content-type-oip", INFER, oip("good"), {}, (200,)),
    hostile(
        "upper-case-json-analyze",
        ANALYZE,
        b'{"text": "good"}',
        {"content-type": "APPLICATION/JSON"},
        (200,),
    ),
    hostile(
        "upper-case-json-oip", INFER, oip("good"), {"content-type": "APPLICATION/JSON"}, (200,)
    ),
    hostile(
        "mixed-case-json-charset-embed",
        "/embed",
        b'{"text": "good"}',
        {"content-type": "Application/Json; Charset=UTF-8"},
        (200,),
    ),
    hostile(
        "http10-analyze",
        ANALYZE,
        raw=(http("POST", ANALYZE, "HTTP/1.0", JSON, b'{"text": "good"}'), b""),
        expect=(200,),
    ),
    hostile(
        "http10-oip",
        INFER,
        raw=(http("POST", INFER, "HTTP/1.0", JSON, oip("good")), b""),
        expect=(200,),
    ),
    hostile(
        "http10-get-v2", "/v2", raw=(http("GET", "/v2", "HTTP/1.0", {}, b""), b""), expect=(200,)
    ),
    hostile("gzip-valid-oip", INFER, GOOD_GZIP, GZIP, (200,)),
    hostile("gzip-bomb-oip", INFER, BOMB, GZIP, (413,)),
    hostile("gzip-cut-in-half-oip", INFER, GOOD_GZIP[: len(GOOD_GZIP) // 2], GZIP, (400,)),
    hostile("gzip-without-trailer-oip", INFER, GOOD_GZIP[:-8], GZIP, (400,)),
    hostile("gzip-trailing-junk-oip", INFER, GOOD_GZIP + b"trailing junk", GZIP, (400,)),
    hostile("brotli-oip", INFER, oip("good"), {**JSON, "content-encoding": "br"}, (415,)),
    hostile("gzip-analyze", ANALYZE, gzip.compress(b'{"text": "good"}'), GZIP),
    hostile(
        "header-64kb-in-two-writes",
        "/v2",
        raw=(BIG_HEADER[:SPLIT], BIG_HEADER[SPLIT:]),
        may_close=True,
    ),
    hostile(
        "url-100kb-in-two-writes", "/v2", raw=(BIG_URL[:SPLIT], BIG_URL[SPLIT:]), may_close=True
    ),
    hostile("header-64kb-in-one-write", "/v2", raw=(BIG_HEADER, b""), may_close=True),
    hostile("url-100kb-in-one-write", "/v2", raw=(BIG_URL, b""), may_close=True),
    hostile("lone-surrogate-oip", INFER, oip("\ud800"), expect=(400,)),
    hostile("lone-surrogate-embed", "/embed", b'{"text": "\\ud800"}', expect=(400,)),
    hostile(
        "lone-low-surrogate-analyze", ANALYZE, b'{"texts": ["fine", "\\udfff"]}', expect=(400,)
    ),
    hostile("outputs-int", INFER, oip("good", outputs=5), expect=(400,)),
    hostile("outputs-true", INFER, oip("good", outputs=True), expect=(400,)),
    hostile(
        "outputs-name-list-no-inputs", INFER, encode({"outputs": [{"name": []}]}), expect=(400,)
    ),
    hostile("outputs-name-list", INFER, oip("good", outputs=[{"name": []}]), expect=(400,)),
    hostile("deep-array-body-oip", INFER, nested(10_000).encode(), expect=(400,)),
    hostile("deep-array-body-analyze", ANALYZE, nested(10_000).encode(), expect=(400,)),
    hostile(
        "deep-array-body-index", "/v2/repository/index", nested(10_000).encode(), expect=(400,)
    ),
    hostile("deep-array-data", INFER, oip_raw(data=nested(10_000)), expect=(400,)),
    hostile(
        "deep-array-texts-embed", "/embed", f'{{"texts": {nested(10_000)}}}'.encode(), expect=(400,)
    ),
    hostile(
        "deep-object-parameters",
        INFER,
        oip_raw(tail=', "parameters": ' + '{"a": ' * 5_000 + "1" + "}" * 5_000),
        expect=(400,),
    ),
    hostile("five-thousand-digit-shape", INFER, oip_raw(shape=f"[{'9' * 5000}]"), expect=(400,)),
    hostile("four-thousand-digit-shape", INFER, oip_raw(shape=f"[{'9' * 4000}]"), expect=(400,)),
    hostile(
        "shape-product-past-digit-limit",
        INFER,
        oip_raw(shape=f"[{'9' * 3000}, {'9' * 3000}]"),
        expect=(400,),
    ),
    hostile(
        "shape-product-wraps-to-one",
        INFER,
        oip("good", shape=[2**63 - 1, 2**63 - 1]),
        expect=(400,),
    ),
    hostile("shape-product-wraps-to-zero", INFER, oip(shape=[2**32, 2**32]), expect=(400,)),
    hostile("nan-shape", INFER, oip_raw(shape="[NaN]"), expect=(400,)),
    hostile("infinity-shape", INFER, oip_raw(shape="[Infinity]"), expect=(400,)),
    hostile("negative-shape", INFER, oip("good", shape=[-1]), expect=(400,)),
    hostile("bool-shape", INFER, oip("good", shape=[True]), expect=(400,)),
    hostile("float-shape", INFER, oip("good", shape=[1.0]), expect=(400,)),
    hostile("zero-in-shape", INFER, oip("good", shape=[1, 0]), expect=(400,)),
    hostile(
        "huge-timeout-parameter", INFER, oip("good", parameters={"timeout": 2**64}), expect=(200,)
    ),
    hostile(
        "nan-timeout-parameter",
        INFER,
        oip("good", parameters={"timeout": float("nan")}),
        expect=(400,),
    ),
    hostile("huge-int-id", INFER, oip("good", id=10**30), expect=(400,)),
    hostile("lone-surrogate-id", INFER, oip("good", id="\ud800")),
    hostile("duplicate-inputs-last-wins", INFER, oip_raw(tail=', "inputs": 7'), expect=(400,)),
    hostile(
        "load-served-bad-parameters",
        f"{LOAD}/tiny-sentiment/load",
        encode({"parameters": {"variant": "\ud800", "x": 1}}),
        expect=(400,),
    ),
    hostile(
        "load-nul-name-huge-version", f"{LOAD}/%00/load", encode({"parameters": {"version": 2**64}})
    ),
    hostile(
        "load-surrogate-alias", f"{LOAD}/nope/load", encode({"parameters": {"alias": "\ud800"}})
    ),
    hostile("load-upper-case-name", f"{LOAD}/Foo/load", b"{}", expect=(400, 404)),
    hostile("load-traversal-name", f"{LOAD}/..%2F..%2Fetc/load", b"{}"),
    hostile("load-dotdot-name", f"{LOAD}/../load", b"{}"),
    hostile("unload-unknown", f"{LOAD}/no-such-model/unload", b"{}", expect=(404,)),
    hostile("index-nan-ready", "/v2/repository/index", b'{"ready": NaN}', expect=(400,)),
    hostile("empty-body-oip", INFER, b"", expect=(400,)),
    hostile("null-body-oip", INFER, b"null", expect=(400,)),
    hostile("null-body-analyze", ANALYZE, b"null", expect=(400,)),
    hostile("utf8-bom-analyze", ANALYZE, b"\xef\xbb\xbf" + b'{"text": "good"}'),
    hostile("utf8-bom-oip", INFER, b"\xef\xbb\xbf" + oip("good")),
]


@pytest.mark.parametrize("case", CASES)
def test_hostile_request_is_refused_cleanly_and_serving_goes_on(
    server: Server, client: httpx.Client, case: Case
) -> None:
    workers = worker_pids(server)
    if case.raw is not None:
        answer = raw_exchange(server.url, *case.raw)
        assert answer.seconds < 10, answer
        status, content_type, body = (
            answer.status,
            answer.headers.get("content-type", ""),
            answer.body,
        )
    else:
        response = client.post(case.path, content=case.body, headers=case.headers)
        status, content_type = response.status_code, response.headers.get("content-type", "")
        body = response.content
    if status is None:
        assert case.may_close, "the connection closed without an answer"
    else:
        problem = error_problem(status, content_type, body)
        assert problem is None, problem
        assert not case.expect or status in case.expect, f"{status}, expected {sorted(case.expect)}"
    after = client.post(ANALYZE, json={"text": "good"})
    assert after.status_code == 200, after.text
    after = client.post(INFER, content=oip("good"), headers=JSON)
    assert after.status_code == 200, after.text
    assert server.process.poll() is None and worker_pids(server) == workers


def test_after_the_fuzz_every_configured_model_is_still_served(client: httpx.Client) -> None:
    index = client.post("/v2/repository/index", json={"ready": True})
    assert index.status_code == 200, index.text
    assert {entry["name"] for entry in index.json()} >= set(SERVED), index.text
