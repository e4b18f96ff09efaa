"""The config reference (docs/config-reference.md), generated from the built-in
components' config classes so that it cannot drift: a test compares the
committed file with `render()`. Regenerate with `python -m llmtap.reference`."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from llmtap.component import Kind
from llmtap.config import _RawService
from llmtap.configtypes import describe_fields
from llmtap.registry import _BUILTIN_MODULES

PATH = Path(__file__).resolve().parent.parent / "docs" / "config-reference.md"


def _table(config_class: type) -> list[str]:
    rows = describe_fields(config_class)
    if not rows:
        return ["No settings.", ""]
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, type_, default, text in rows:
        lines.append(f"| `{key}` | {type_} | {f'`{default}`' if default else ''} | {text} |")
    return [*lines, ""]


def render() -> str:
    out = ["# Config reference", "",
           "Generated from the config classes by `python -m llmtap.reference`; do not edit by hand.",
           "Durations are written `5s`, `200ms`, `1m30s`; sizes `20MiB`, `512KiB` or a number of bytes.", ""]
    factories = [importlib.import_module(m).factory for m in _BUILTIN_MODULES]
    for factory in sorted(factories, key=lambda f: (list(Kind).index(f.kind), f.type)):
        out += [f"## {factory.kind} `{factory.type}`", ""]
        signals = sorted(f"{s[0]} → {s[1]}" if isinstance(s, tuple) else str(s) for s in factory.signals)
        out += [factory.description, "", f"Stability: {factory.stability}. Signals: {', '.join(signals) or 'n/a'}.", ""]
        out += _table(factory.config_class)
    out += ["## `service`", ""] + _table(_RawService)
    return "\n".join(out)


if __name__ == "__main__":
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if PATH.read_text() == render() else 1)
    PATH.parent.mkdir(exist_ok=True)
    PATH.write_text(render())
    print(f"wrote {PATH}")
