"""Loading: read the files, apply environment overrides, validate, name every problem."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr, ValidationError

from gateway.errors import ConfigError
from gateway.settings.gateway import Settings
from gateway.settings.tenants import IDENTITY_TYPES

ENV_PREFIX = "LAKEGATE_"


class _Loader(yaml.SafeLoader):
    """YAML 1.1 without its word booleans: ``mode: off`` is the word "off", as it looks, not
    False. Only true and false (any case) are booleans, as in YAML 1.2; a boolean setting
    still takes on/off/yes/no, which pydantic reads as words meaning true or false."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def parse_yaml(text: str) -> Any:
    """One YAML document as the settings read it (see ``_Loader``)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror or exc}"]) from exc
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        # The parser's own text spans lines and quotes the file; its problem alone is enough.
        what = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise ConfigError([f"{path}: not valid YAML{where}: {what}"]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: the top level must be a mapping of keys"])
    return data


def _env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[tuple[str, ...], str]]:
    """``LAKEGATE_SERVER__PORT=9000`` -> ``{"server": {"port": 9000}}``; values parse as YAML."""
    overrides: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = tuple(part.lower() for part in name[len(ENV_PREFIX) :].split("__"))
        if not all(path):
            continue
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        try:
            node[path[-1]] = parse_yaml(raw) if raw != "" else ""
        except yaml.YAMLError:
            node[path[-1]] = raw
        origin[path] = name
    return overrides, origin


def _merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _problems(
    exc: ValidationError,
    source: dict[str, str],
    origin: Mapping[tuple[str, ...], str],
) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        # Discriminated unions add the tag to the path ('identity.pat.token'); people write
        # 'identity.token', so drop it.
        loc = tuple(p for p in loc if p not in IDENTITY_TYPES)
        env_name = next((v for k, v in origin.items() if loc[: len(k)] == k), None)
        if env_name:
            where = f"environment {env_name}"
        elif loc and loc[0] == "tenants":
            where = source["tenants"]
            loc = loc[1:]
        else:
            where = source["gateway"]
        key = ".".join(loc) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {key}: {message}")
    return problems


def load_settings(path: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate; raise ``ConfigError`` naming every bad file and key, of both
    files in one pass (a tenants file that cannot be read does not hide the gateway file's)."""
    environ = os.environ if environ is None else environ
    gateway_path = Path(path)
    data = _read_yaml(gateway_path)
    overrides, origin = _env_overrides(environ)
    data = _merge(data, overrides)
    source = {"gateway": str(gateway_path), "tenants": str(gateway_path)}
    problems: list[str] = []
    tenants_file = data.get("tenants_file")
    if tenants_file is not None:
        problems += _read_tenants(data, gateway_path, tenants_file, source)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(problems + _problems(exc, source, origin)) from exc
    if problems:
        raise ConfigError(problems)
    return settings


def _read_tenants(
    data: dict[str, Any], gateway_path: Path, tenants_file: object, source: dict[str, str]
) -> list[str]:
    """Put the tenants file's content in ``data``; the problems that stopped it, if any."""
    if not isinstance(tenants_file, str):
        data.pop("tenants_file")
        return [f"{gateway_path}: tenants_file: must be a path"]
    # Absolute but not resolved: a ConfigMap's file is a symlink that live reload follows.
    tenants_path = Path(os.path.abspath(gateway_path.parent / tenants_file))
    if "tenants" in data:
        return [f"{gateway_path}: tenants: give tenants inline or in tenants_file, not both"]
    data["tenants_file"] = str(tenants_path)
    source["tenants"] = str(tenants_path)
    try:
        data["tenants"] = _read_yaml(tenants_path)
    except ConfigError as exc:
        return list(exc.problems)
    return []


def resolve_secret(
    inline: SecretStr | None, env_name: str | None, environ: Mapping[str, str]
) -> str:
    """The secret's value from the settings or the named environment variable."""
    if inline is not None:
        return inline.get_secret_value()
    if env_name is None:
        raise ConfigError(["a secret has neither a value nor an environment variable"])
    value = environ.get(env_name)
    if not value:
        raise ConfigError([f"environment {env_name}: is not set or empty"])
    return value
