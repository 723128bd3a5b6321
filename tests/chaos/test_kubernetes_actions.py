"""The Kubernetes actions through the real python client, against a recording stand-in for
the API server on 127.0.0.1 (no cluster can run here): the calls must be the right verbs on
the right paths with the right bodies."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelserve_chaos.errors import ActionFailed
from modelserve_chaos.kubernetes_target import actions
from tests.conftest import free_port

LABELS = {"app": "predictor"}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": {"containers": [{"name": "p", "image": "x"}]}}
REPLICA_SETS = {
    "kind": "ReplicaSetList",
    "apiVersion": "apps/v1",
    "metadata": {},
    "items": [
        {
            "metadata": {"name": "predictor-old"},
            "spec": {"replicas": 0, "selector": {"matchLabels": LABELS}},
        },
        {
            "metadata": {"name": "predictor-new"},
            "spec": {"replicas": 1, "selector": {"matchLabels": LABELS}},
        },
    ],
}
PODS = {
    "kind": "PodList",
    "apiVersion": "v1",
    "metadata": {},
    "items": [
        {"metadata": {"name": "predictor-b"}, "status": {"phase": "Running"}},
        {"metadata": {"name": "predictor-a"}, "status": {"phase": "Pending"}},
    ],
}
DEPLOYMENT = {
    "kind": "Deployment",
    "apiVersion": "apps/v1",
    "metadata": {"name": "predictor"},
    "spec": {"selector": {"matchLabels": LABELS}, "template": TEMPLATE},
}


class FakeApiServer:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict | None]] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, body: dict, status: int = 200) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length)) if length else None
                recorder.calls.append((self.command, self.path, body))

            def do_GET(self) -> None:
                self._record()
                if "/replicasets" in self.path:
                    self._answer(REPLICA_SETS)
                elif "/pods" in self.path:
                    self._answer(PODS)
                else:
                    self._answer({"kind": "Status", "code": 404}, 404)

            def do_PATCH(self) -> None:
                self._record()
                if self.path.endswith("/scale"):
                    self._answer(
                        {
                            "kind": "Scale",
                            "apiVersion": "autoscaling/v1",
                            "metadata": {},
                            "spec": {"replicas": 0},
                        }
                    )
                elif "missing" in self.path:
                    self._answer({"kind": "Status", "code": 404, "reason": "NotFound"}, 404)
                else:
                    self._answer(DEPLOYMENT)

            def do_DELETE(self) -> None:
                self._record()
                if "/pods/" in self.path:
                    self._answer({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "x"}})
                else:
                    self._answer(
                        {"kind": "Status", "apiVersion": "v1", "status": "Success", "metadata": {}}
                    )

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def api() -> Iterator[tuple[FakeApiServer, actions.Clients]]:
    from kubernetes import client

    fake = FakeApiServer()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration()
    configuration.host = fake.url
    api_client = client.ApiClient(configuration)
    yield (
        fake,
        actions.Clients(core=client.CoreV1Api(api_client), apps=client.AppsV1Api(api_client)),
    )
    api_client.close()
    fake.server.shutdown()
    fake.server.server_close()


def test_rollout_restart_patches_the_restarted_at_annotation(api) -> None:
    fake, clients = api
    result = actions.rollout_restart(clients, "ns", "predictor")
    ((verb, path, body),) = fake.calls
    assert (verb, path) == ("PATCH", "/apis/apps/v1/namespaces/ns/deployments/predictor")
    stamp = body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
    assert stamp == result["restartedAt"]


def test_delete_replica_set_deletes_the_active_one_in_background(api) -> None:
    fake, clients = api
    assert actions.delete_replica_set(clients, "ns", "app=predictor") == {
        "replica_set": "predictor-new"
    }
    listing, deletion = fake.calls
    assert listing[0] == "GET" and "labelSelector=app%3Dpredictor" in listing[1]
    verb, path, body = deletion
    assert (verb, path.split("?")[0]) == (
        "DELETE",
        "/apis/apps/v1/namespaces/ns/replicasets/predictor-new",
    )
    assert (
        "propagationPolicy=Background" in path
        or (body or {}).get("propagationPolicy") == "Background"
    )


def test_delete_pod_deletes_a_running_pod_immediately(api) -> None:
    fake, clients = api
    assert actions.delete_pod(clients, "ns", "app=predictor") == {"pod": "predictor-b"}
    deletion = fake.calls[-1]
    verb, path, body = deletion
    assert (verb, path.split("?")[0]) == ("DELETE", "/api/v1/namespaces/ns/pods/predictor-b")
    assert "gracePeriodSeconds=0" in path or (body or {}).get("gracePeriodSeconds") == 0


def test_scale_to_zero_and_api_errors_are_action_failures(api) -> None:
    fake, clients = api
    actions.scale(clients, "ns", "predictor", 0)
    assert fake.calls[-1] == (
        "PATCH",
        "/apis/apps/v1/namespaces/ns/deployments/predictor/scale",
        {"spec": {"replicas": 0}},
    )
    with pytest.raises(ActionFailed, match="HTTP 404"):
        actions.rollout_restart(clients, "ns", "missing")


def test_node_actions_never_kill_containerd_shims() -> None:
    seen: list[list[str]] = []

    def run(argv):
        seen.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")

    actions.kill_containerd(run=run)
    actions.restart_control_plane(via_nsenter=True, run=run)
    assert seen[0] == ["pkill", "-x", "containerd"]
    assert seen[1][:3] == ["nsenter", "--target", "1"] and seen[1][-3:] == [
        "systemctl",
        "restart",
        "k3s",
    ]
    with pytest.raises(ActionFailed, match="exited 1"):
        actions.kill_containerd(run=lambda a: subprocess.CompletedProcess(a, 1, "", "denied"))


def test_the_study_experiment_validates_and_chaos_lists_its_actions() -> None:
    from modelserve_chaos.cli import cli

    experiment = Path(__file__).parents[2] / "packages/chaos/experiments/k3s-study-resilience.yaml"
    assert cli(["validate", str(experiment)]) == 0
    assert cli(["list"]) == 0


def test_bad_experiments_are_one_clear_error(tmp_path: Path, capsys) -> None:
    from modelserve_chaos.cli import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "title: x\ntarget: {kind: kubernetes}\nsteady_state_hypothesis: {title: t, "
        "probes: [{name: p, kind: http, tolerance: 200}]}\n"
        "method: [{name: m, action: explode}]\n"
    )
    assert cli(["validate", str(bad)]) == 2
    assert "not a kubernetes action" in capsys.readouterr().err
    bad.write_text("title: [unclosed")
    assert cli(["validate", str(bad)]) == 2


def test_disruptions_are_posted_to_grafana_as_annotations() -> None:
    from modelserve_chaos.runner import _annotate

    posted: list[dict] = []

    class Grafana(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Grafana)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        event = {"t": 1700000000.5, "name": "pod delete", "action": "delete-pod"}
        assert _annotate(url, event) is None
        assert posted == [
            {
                "time": 1700000000500,
                "tags": ["chaos", "delete-pod"],
                "text": "pod delete (delete-pod)",
            }
        ]
        assert "failed" in _annotate(f"http://127.0.0.1:{free_port()}", event)
    finally:
        server.shutdown()
        server.server_close()


def test_prometheus_probes_read_an_instant_query() -> None:
    from modelserve_chaos.experiment import Hypothesis, Probe
    from modelserve_chaos.runner import check

    class Prometheus(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            value = "0.02" if "errors" in self.path else "nan-not-a-number"
            body = json.dumps(
                {
                    "status": "success",
                    "data": {
                        "resultType": "vector",
                        "result": [{"metric": {}, "value": [1700000000, value]}],
                    },
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Prometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        hypothesis = Hypothesis(
            title="t",
            probes=[
                Probe(name="ok", kind="prometheus", url=base, query="errors", tolerance=[0, 0.05]),
                Probe(name="high", kind="prometheus", url=base, query="errors", tolerance=0.01),
                Probe(name="junk", kind="prometheus", url=base, query="junk", tolerance=1),
            ],
        )
        result = check(hypothesis, base, None)
        assert [p["ok"] for p in result["probes"]] == [True, False, False]
        assert result["probes"][0]["value"] == 0.02 and result["ok"] is False
    finally:
        server.shutdown()
        server.server_close()
