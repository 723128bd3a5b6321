"""The catalogue of actions, by target kind: what `chaos list` prints and what an experiment
file may name. Implementations live in one folder per kind of target; the registry's actions,
which do not depend on the target, in registry_actions.py."""

from __future__ import annotations

REGISTRY_ACTIONS: dict[str, str] = {
    "promote-alias": "point `model`@`alias` (default production) at `version` in the registry; "
    "the predictor swaps to it live",
}

ACTIONS: dict[str, dict[str, str]] = {
    "kubernetes": {
        "restart-control-plane": "systemctl restart k3s on the node (pods keep running)",
        "kill-containerd": "pkill -x containerd on the node (k3s exits; systemd restarts it)",
        "rollout-restart": "patch the Deployment's restartedAt annotation (kubectl rollout "
        "restart)",
        "delete-replica-set": "delete the active ReplicaSet (Background propagation)",
        "delete-pod": "delete one running predictor pod (grace period 0 by default)",
        "scale": "set the Deployment's replicas (scale to zero and back)",
        **REGISTRY_ACTIONS,
    },
    "local": {
        "kill-worker": "SIGKILL one BentoML worker (its siblings keep serving; it is replaced)",
        "kill-server": "SIGKILL the whole predictor; the supervisor starts it again",
        "term-server": "SIGTERM the predictor (graceful stop); the supervisor starts it again",
        "stall-worker": "SIGSTOP a worker, SIGCONT it after `seconds` (a stall)",
        "restart-with-variant": "restart the predictor serving `models` (PREDICTOR_MODELS form)",
        **REGISTRY_ACTIONS,
    },
}
