"""Typed component configs: dataclasses decoded from YAML maps with every error
collected, each naming its key path.

A config class is a dataclass whose fields have defaults. Field types understood:
str, int, float, bool, Duration ("5s", "200ms", "1m30s" or a number of seconds),
ByteSize (20971520, "20MiB", "512KiB"), Literal[...], list[X], dict[str, X], X | None,
and nested config dataclasses. A class may define `validate(self) -> list[str]` for
checks across fields; each message should begin with the key it is about.
Each field's `metadata["doc"]` documents it (the config reference is generated from it).
"""

from __future__ import annotations

import dataclasses
import re
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints


class Duration(float):
    """Seconds; written in config as a Go-style duration ("5s", "1m30s", "250ms")."""


class ByteSize(int):
    """Bytes; written in config as an integer or with a unit ("20MiB", "64KiB", "1GB")."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}


def parse_duration(text: str) -> float:
    text = text.strip()
    if text in ("0", ""):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or pos == 0:
        raise ValueError(f"invalid duration {text!r} (expected e.g. 5s, 200ms, 1m30s)")
    return total


def parse_size(text: str) -> int:
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"invalid size {text!r} (expected e.g. 20971520, 20MiB, 512KiB)")
    return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]


def _type_name(value: Any) -> str:
    return {dict: "map", list: "list", str: "string", bool: "bool", int: "int", float: "float",
            type(None): "null"}.get(type(value), type(value).__name__)


class _Decoder:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}" if path else message)

    def decode(self, hint: Any, value: Any, path: str) -> Any:
        origin = get_origin(hint)
        if origin in (Union, types.UnionType):
            options = get_args(hint)
            if value is None and type(None) in options:
                return None
            inner = [o for o in options if o is not type(None)]
            return self.decode(inner[0], value, path)
        if origin is Literal:
            allowed = get_args(hint)
            if value not in allowed:
                self.fail(path, f"must be one of {', '.join(map(str, allowed))}; got {value!r}")
            return value
        if origin is list:
            if not isinstance(value, list):
                self.fail(path, f"expected a list, got {_type_name(value)}")
                return []
            (item,) = get_args(hint)
            return [self.decode(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        if origin is dict:
            if not isinstance(value, dict):
                self.fail(path, f"expected a map, got {_type_name(value)}")
                return {}
            _, item = get_args(hint)
            return {str(k): self.decode(item, v, f"{path}.{k}") for k, v in value.items()}
        if dataclasses.is_dataclass(hint):
            return self.decode_dataclass(hint, value, path)
        if hint is Duration:
            try:
                if isinstance(value, bool):
                    raise ValueError(f"expected a duration, got {_type_name(value)}")
                seconds = float(value) if isinstance(value, (int, float)) else parse_duration(str(value))
                if seconds < 0:
                    raise ValueError("must not be negative")
                return Duration(seconds)
            except ValueError as e:
                self.fail(path, str(e))
                return Duration(0)
        if hint is ByteSize:
            try:
                if isinstance(value, bool) or not isinstance(value, (int, str)):
                    raise ValueError(f"expected a size, got {_type_name(value)}")
                return ByteSize(value if isinstance(value, int) else parse_size(value))
            except ValueError as e:
                self.fail(path, str(e))
                return ByteSize(0)
        if hint is Any:
            return value
        if hint is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if hint in (str, int, float, bool):
            if type(value) is not hint:
                self.fail(path, f"expected {_type_name(hint())}, got {_type_name(value)} {value!r}")
            return value
        raise TypeError(f"config field type {hint!r} is not supported")

    def decode_dataclass(self, cls: type, value: Any, path: str) -> Any:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(path, f"expected a map, got {_type_name(value)}")
            return cls()
        hints = get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        kwargs = {}
        errors_before = len(self.errors)
        for key, raw in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key not in fields:
                known = ", ".join(sorted(fields)) or "none"
                self.fail(sub, f"unknown key (known keys: {known})")
                continue
            kwargs[key] = self.decode(hints[key], raw, sub)
        obj = cls(**kwargs)
        validate = getattr(obj, "validate", None)
        # Cross-field checks only make sense once every field decoded.
        if validate is not None and len(self.errors) == errors_before:
            for message in validate() or ():
                self.fail(path, message)
        return obj


def decode_config(cls: type, raw: Any) -> tuple[Any, list[str]]:
    """Decode a raw YAML value into `cls`; return the config and every error."""
    decoder = _Decoder()
    obj = decoder.decode_dataclass(cls, raw, "")
    return obj, decoder.errors


def describe_fields(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key path, type, default, doc) for every field, nested configs flattened."""
    rows = []
    hints = get_type_hints(cls)
    default_obj = cls()
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        key = f"{prefix}{f.name}"
        default = getattr(default_obj, f.name)
        if dataclasses.is_dataclass(hint):
            rows.append((key, "map", "", f.metadata.get("doc", "")))
            rows.extend(describe_fields(hint, key + "."))
            continue
        rows.append((key, _hint_name(hint), _default_text(default), f.metadata.get("doc", "")))
    return rows


def _hint_name(hint: Any) -> str:
    if hint is Duration:
        return "duration"
    if hint is ByteSize:
        return "size"
    origin = get_origin(hint)
    if origin is Literal:
        return " \\| ".join(map(str, get_args(hint)))
    if origin in (Union, types.UnionType):
        return " \\| ".join(_hint_name(a) for a in get_args(hint))
    if origin is list:
        return f"list of {_hint_name(get_args(hint)[0])}"
    if origin is dict:
        return f"map of {_hint_name(get_args(hint)[1])}"
    if dataclasses.is_dataclass(hint):
        return "map"
    return getattr(hint, "__name__", str(hint)).replace("NoneType", "null")


def _default_text(value: Any) -> str:
    if isinstance(value, Duration):
        return f"{value:g}s"
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)) and not value:
        return ""
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def doc(text: str) -> dict:
    """`field(default=..., metadata=doc("..."))`."""
    return {"doc": text}

