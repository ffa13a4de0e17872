"""Loading the configuration: YAML -> ``${VAR}`` substitution -> typed Structs -> paths.

Every problem is one :class:`ConfigError` line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec
import yaml

from data_collector.config_schema import (
    PATH_KEYS,
    SECRET_KEYS,
    SECTIONS,
    Config,
    ConfigError,
    ExchangeConfig,
    expand_data_dir,
    is_secret_key,
)

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


def substitute_env(value: Any, env: dict[str, str], path: str = "") -> Any:
    """Replace ``${VAR}`` / ``${VAR:default}`` in every string of a parsed YAML tree."""
    if isinstance(value, dict):
        return {k: substitute_env(v, env, _join(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(v, env, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(
            f"{path}: environment variable {name} is not set; set it, or write "
            f"${{{name}:default}} to give a default"
        )

    return _ENV_REF.sub(replace, value)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"config file {path} not found; pass --config PATH or run from the directory "
            "that holds config.yaml"
        ) from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections at the top level")
    return raw


def resolve_paths(config: Config, base_dir: Path) -> None:
    """Make every relative path key (``~`` expanded) relative to ``base_dir``, the config
    file's directory, so the same file means the same directories from any working
    directory."""
    for key in PATH_KEYS:
        section_key, name = key.rsplit(".", 1)
        section: Any = config
        for part in section_key.split("."):
            section = getattr(section, part)
        value = expand_data_dir(getattr(section, name), config.data_collector.data_dir)
        if value:
            path = base_dir / Path(value).expanduser()  # an absolute value replaces base_dir
            setattr(section, name, os.path.normpath(path))


_LOC = re.compile(r" - at `\$(?P<loc>[^`]*)`$")
_UNKNOWN = re.compile(r"Object contains unknown field `(?P<field>[^`]+)`")
_MISSING = object()


def decode(raw: dict[str, Any]) -> Config:
    raw = _secrets_as_strings(raw)
    exchanges = raw.get("exchanges")
    if isinstance(exchanges, dict):
        # decoded one by one so that an error names the venue (msgspec says "exchanges[...]")
        for name, block in exchanges.items():
            _convert(block, ExchangeConfig, raw, prefix=f"exchanges.{name}")
    return _convert(raw, Config, raw)


def _convert(value: Any, struct: type[Any], raw: dict[str, Any], prefix: str = "") -> Any:
    try:
        # strict=False: values from ${VAR} arrive as strings ("5432", "true").
        return msgspec.convert(value, struct, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(str(exc), raw, prefix)) from None


def _secrets_as_strings(raw: dict[str, Any]) -> dict[str, Any]:
    """``password: 123456`` is a string to the user: YAML's int must not make it an error."""
    for section in [raw.get("database"), *((raw.get("exchanges") or {}).values())]:
        if isinstance(section, dict):
            for key in SECRET_KEYS & section.keys():
                if isinstance(section[key], int | float) and not isinstance(section[key], bool):
                    section[key] = str(section[key])
    return raw


def _explain(message: str, raw: dict[str, Any], prefix: str = "") -> str:
    loc_match = _LOC.search(message)
    loc = loc_match.group("loc") if loc_match else ""
    key = _join(prefix, _dotted(loc)) if prefix else _dotted(loc)
    problem = _LOC.sub("", message)
    unknown = _UNKNOWN.match(problem)
    if unknown:
        struct = ExchangeConfig if re.fullmatch(r"exchanges\.[^.]+", key) else SECTIONS.get(key)
        full = _join(key, unknown.group("field"))
        allowed = ", ".join(struct.__struct_fields__) if struct else "see config.yaml"
        return f"{full}: unknown key; allowed keys here: {allowed}"
    value = _value_at(raw, f".{key}" if key else "")
    if is_secret_key(key):
        shown = " (value hidden: it is a secret)"
    else:
        shown = f" (value: {value!r})" if value is not _MISSING else ""
    return f"{key or 'config'}: {problem[0].lower()}{problem[1:]}{shown}"


def _dotted(loc: str) -> str:
    return re.sub(r"^\.", "", loc.replace("[", ".[")).replace(".[", "[")


def _value_at(raw: Any, loc: str) -> Any:
    node = raw
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", loc):
        name, index = part
        try:
            node = node[name] if name else node[int(index)]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return node


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
