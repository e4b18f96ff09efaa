"""Reading config files as the OpenTelemetry Collector does: YAML maps merged in
order, then `${...}` references expanded.

- `${env:VAR}` and `${VAR}`: the variable's value; unset → empty string (with a
  warning, as the collector does).
- `${env:VAR:-default}`: the default when VAR is unset or empty.
- `$$`: a literal `$`.
- When a reference is the whole value, the expansion is read as YAML, so
  `port: ${env:PORT}` yields an int; inside a longer string it stays text.
- Files merge like the collector's `--config a.yaml --config b.yaml`: maps merge
  key by key, the later file wins; any other value (lists included) is replaced.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Mapping

import yaml

log = logging.getLogger("llmtap.config")

_REF = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ConfigSourceError(Exception):
    """A file that cannot be read or a reference that cannot be expanded."""


def merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = merge(base[key], value) if key in base else value
        return out
    return override


def _lookup(ref: str, env: Mapping[str, str], where: str) -> str:
    scheme, colon, rest = ref.partition(":")
    if not colon:
        scheme, rest = "env", ref
    if scheme != "env":
        raise ConfigSourceError(f"{where}: unsupported config source '${{{ref}}}' (only env is supported)")
    name, _, default = rest.partition(":-")
    has_default = ":-" in rest
    if not _ENV_NAME.fullmatch(name):
        raise ConfigSourceError(f"{where}: invalid environment variable name in '${{{ref}}}'")
    value = env.get(name)
    if has_default and not value:
        return default
    if value is None:
        log.warning("%s: environment variable %s is not set; using an empty value", where, name)
        return ""
    return value


def expand_string(text: str, env: Mapping[str, str], where: str = "config") -> Any:
    whole = _REF.fullmatch(text)
    if whole and whole.group(0) != "$$":
        value = _lookup(whole.group(1), env, where)
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        # Scalars only: a variable must not inject structure into the config.
        return parsed if isinstance(parsed, (str, int, float, bool)) else value

    def repl(m: re.Match) -> str:
        return "$" if m.group(0) == "$$" else _lookup(m.group(1), env, where)

    return _REF.sub(repl, text)


def expand(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    if isinstance(node, dict):
        return {k: expand(v, env, f"{path}::{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [expand(v, env, f"{path}[{i}]") for i, v in enumerate(node)]
    if isinstance(node, str):
        return expand_string(node, env, path or "config")
    return node


def load_yaml(text: str, source: str) -> dict:
    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigSourceError(f"{source}: not valid YAML: {e}") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigSourceError(f"{source}: the top level must be a map, got {type(tree).__name__}")
    return tree


def load_files(paths: list[str], env: Mapping[str, str] | None = None) -> dict:
    merged: dict = {}
    for path in paths:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigSourceError(f"cannot read config file {path}: {e.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigSourceError(f"config file {path} is not UTF-8 text") from None
        merged = merge(merged, load_yaml(text, path))
    return expand(merged, os.environ if env is None else env)
