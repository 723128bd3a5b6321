"""Registry actions, the same for every kind of target: the predictor follows `name@alias`, so
moving an alias during a load run measures a release (load beside, switch, drain) under
traffic. They talk to the registry the predictor reads, not to the predictor."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelserve_chaos.errors import ActionFailed
from modelserve_runtime.errors import RegistryError
from modelserve_runtime.references import (
    DEFAULT_ALIAS,
    validate_alias,
    validate_name,
    validate_version,
)
from modelserve_runtime.settings import StoreSettings
from modelserve_runtime.store import Registry

__all__ = ["check_promote_alias", "promote_alias", "run"]

PROMOTE_REQUIRED = ("model", "version")
PROMOTE_OPTIONAL = ("alias", "registry_uri", "s3_endpoint_url")


def check_promote_alias(arguments: Mapping[str, Any]) -> None:
    """Refuse missing, unknown or malformed arguments before anything touches the registry."""
    missing = [name for name in PROMOTE_REQUIRED if name not in arguments]
    if missing:
        raise ActionFailed(f"promote-alias needs {' and '.join(missing)}")
    known = (*PROMOTE_REQUIRED, *PROMOTE_OPTIONAL)
    unknown = sorted(set(arguments) - set(known))
    if unknown:
        raise ActionFailed(
            f"promote-alias takes no {', '.join(unknown)} (takes: {', '.join(known)})"
        )
    try:
        validate_name(str(arguments["model"]))
        validate_version(arguments["version"])
        validate_alias(str(arguments.get("alias", DEFAULT_ALIAS)))
    except RegistryError as exc:
        raise ActionFailed(f"promote-alias: {exc}") from None


def _open(registry_uri: str | None, s3_endpoint_url: str | None) -> Registry:
    settings = StoreSettings()
    if registry_uri is None:
        return Registry.from_settings(settings)
    return Registry.open(registry_uri, s3_endpoint_url=s3_endpoint_url or settings.s3_endpoint_url)


def promote_alias(
    model: str,
    version: int | str,
    alias: str = DEFAULT_ALIAS,
    registry_uri: str | None = None,
    s3_endpoint_url: str | None = None,
) -> dict:
    """Point `model@alias` at `version`. The registry is REGISTRY_URI (and
    REGISTRY_S3_ENDPOINT_URL) unless `registry_uri` names another."""
    check_promote_alias({"model": model, "version": version, "alias": alias})
    new = validate_version(version)
    try:
        registry = _open(registry_uri, s3_endpoint_url)
        old = registry.aliases(model).get(alias)
        registry.tag(model, new, alias)
    except RegistryError as exc:
        raise ActionFailed(f"promote-alias {model}@{alias} -> {new}: {exc}") from None
    return {
        "model": model,
        "alias": alias,
        "old_version": old,
        "new_version": new,
        "registry": registry.location,
    }


CHECKS = {"promote-alias": check_promote_alias}
FUNCTIONS = {"promote-alias": promote_alias}


def run(action: str, arguments: Mapping[str, Any]) -> dict:
    """Carry out a registry action named in an experiment, arguments checked first."""
    CHECKS[action](arguments)
    return FUNCTIONS[action](**arguments)
