"""Kubernetes actions, through the official python client: the study's five disruptions plus
scale to zero and back. Each takes the clients and the target and returns what it touched.

The two node-level actions (restart the K3s control plane, kill containerd) need host access:
they run a command on the node itself, either directly (the chaos runner on the node) or via
`nsenter` from a privileged pod with hostPID (see deploy/k3s/README.md)."""

from __future__ import annotations

import datetime as dt
import shlex
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelserve_chaos.errors import ActionFailed

__all__ = [
    "NODE_COMMANDS",
    "Clients",
    "delete_pod",
    "delete_replica_set",
    "kill_containerd",
    "restart_control_plane",
    "rollout_restart",
    "scale",
]

# `pkill -x` matches the exact process name: a bare `pkill containerd` also matches every
# containerd-shim and kills all pods on the node.
NODE_COMMANDS = {
    "restart-control-plane": ["systemctl", "restart", "k3s"],
    "kill-containerd": ["pkill", "-x", "containerd"],
}
NSENTER = ["nsenter", "--target", "1", "--mount", "--uts", "--ipc", "--net", "--pid", "--"]


@dataclass
class Clients:
    core: Any  # kubernetes.client.CoreV1Api
    apps: Any  # kubernetes.client.AppsV1Api

    @classmethod
    def connect(cls, kubeconfig: str | None = None) -> Clients:
        from kubernetes import client, config

        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config(config_file=kubeconfig)
        return cls(core=client.CoreV1Api(), apps=client.AppsV1Api())


def _call(what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return function(*args, **kwargs)
    except ApiException as exc:
        raise ActionFailed(f"{what}: HTTP {exc.status} {exc.reason}") from None


def rollout_restart(clients: Clients, namespace: str, deployment: str) -> dict:
    """What `kubectl rollout restart` does: stamp the pod template so pods are replaced."""
    now = dt.datetime.now(dt.UTC).isoformat()
    body = {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}}
        }
    }
    _call(
        f"rollout restart {deployment}",
        clients.apps.patch_namespaced_deployment,
        deployment,
        namespace,
        body,
    )
    return {"deployment": deployment, "restartedAt": now}


def delete_replica_set(clients: Clients, namespace: str, label_selector: str) -> dict:
    listed = _call(
        "list replica sets",
        clients.apps.list_namespaced_replica_set,
        namespace,
        label_selector=label_selector,
    )
    active = [rs for rs in listed.items if (rs.spec.replicas or 0) > 0]
    if not active:
        raise ActionFailed(f"no active ReplicaSet matches {label_selector!r} in {namespace}")
    name = active[0].metadata.name
    _call(
        f"delete replica set {name}",
        clients.apps.delete_namespaced_replica_set,
        name,
        namespace,
        propagation_policy="Background",
    )
    return {"replica_set": name}


def delete_pod(
    clients: Clients, namespace: str, label_selector: str, grace_period_s: int = 0
) -> dict:
    listed = _call(
        "list pods", clients.core.list_namespaced_pod, namespace, label_selector=label_selector
    )
    running = sorted(
        p.metadata.name
        for p in listed.items
        if p.status is not None and p.status.phase == "Running"
    )
    if not running:
        raise ActionFailed(f"no running pod matches {label_selector!r} in {namespace}")
    _call(
        f"delete pod {running[0]}",
        clients.core.delete_namespaced_pod,
        running[0],
        namespace,
        grace_period_seconds=grace_period_s,
    )
    return {"pod": running[0]}


def scale(clients: Clients, namespace: str, deployment: str, replicas: int) -> dict:
    _call(
        f"scale {deployment}",
        clients.apps.patch_namespaced_deployment_scale,
        deployment,
        namespace,
        {"spec": {"replicas": replicas}},
    )
    return {"deployment": deployment, "replicas": replicas}


def node_command(
    name: str,
    via_nsenter: bool = False,
    run: Callable[[Sequence[str]], subprocess.CompletedProcess] | None = None,
) -> dict:
    argv = [*NSENTER, *NODE_COMMANDS[name]] if via_nsenter else list(NODE_COMMANDS[name])
    runner = run or (lambda a: subprocess.run(a, capture_output=True, text=True, timeout=120))
    done = runner(argv)
    if done.returncode != 0:
        raise ActionFailed(
            f"{shlex.join(argv)} exited {done.returncode}: {(done.stderr or '').strip()[:200]}"
        )
    return {"command": shlex.join(argv)}


def restart_control_plane(via_nsenter: bool = False, run=None) -> dict:
    return node_command("restart-control-plane", via_nsenter, run)


def kill_containerd(via_nsenter: bool = False, run=None) -> dict:
    return node_command("kill-containerd", via_nsenter, run)
