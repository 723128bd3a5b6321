"""Parsing and validating `NAME[:VERSION|@ALIAS]` references.

Names end up in storage keys and file paths, so they are checked against a strict pattern
here, once, before anything touches the store (no `..`, no slashes, no absolute paths)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelserve_runtime.errors import InvalidReference

NAME_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
# The alias that bootstrap points at what it builds and that serving follows by default.
DEFAULT_ALIAS = "production"


def validate_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise InvalidReference(
            f"invalid model name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


def validate_alias(alias: str) -> str:
    if not ALIAS_PATTERN.fullmatch(alias) or alias.isdigit():
        raise InvalidReference(
            f"invalid alias {alias!r}: use a lowercase word such as 'production' or 'staging'"
        )
    return alias


def validate_version(version: int | str) -> int:
    text = str(version)
    if not text.isdigit() or int(text) < 1 or len(text) > 9:
        raise InvalidReference(f"invalid version {text!r}: versions are integers 1, 2, 3...")
    return int(text)


@dataclass(frozen=True)
class ModelReference:
    """A model name plus at most one of a version or an alias; neither means the latest."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelReference:
        text = text.strip()
        if "@" in text:
            name, alias = text.split("@", 1)
            return cls(validate_name(name), alias=validate_alias(alias))
        if ":" in text:
            name, version = text.split(":", 1)
            return cls(validate_name(name), version=validate_version(version))
        return cls(validate_name(text))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name
