"""`llmtap run | validate | components | doctor`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from importlib.resources import files

from llmtap import confmap, logsetup
from llmtap.config import Config, ConfigError, parse
from llmtap.registry import Registry, default_registry

log = logging.getLogger("llmtap")


def default_config_text() -> str:
    return files("llmtap").joinpath("default-config.yaml").read_text(encoding="utf-8")


def load_config(paths: list[str] | None, registry: Registry) -> Config:
    """Read, merge, expand and validate. Raises ConfigError or ConfigSourceError."""
    if paths:
        raw = confmap.load_files(paths)
    else:
        raw = confmap.expand(confmap.load_yaml(default_config_text(), "built-in default config"),
                             os.environ)
    return parse(raw, registry)


def _report_config_failure(e: Exception) -> int:
    if isinstance(e, ConfigError):
        print(f"llmtap: invalid configuration ({len(e.errors)} error{'s' * (len(e.errors) != 1)}):",
              file=sys.stderr)
        for error in e.errors:
            print(f"  * {error}", file=sys.stderr)
    else:
        print(f"llmtap: {e}", file=sys.stderr)
    return 1


def _load_or_report(args, registry) -> Config | int:
    try:
        config = load_config(args.config, registry)
    except (ConfigError, confmap.ConfigSourceError) as e:
        return _report_config_failure(e)
    for warning in config.warnings:
        log.warning(warning)
    return config


def cmd_run(args) -> int:
    if args.print_default_config:
        sys.stdout.write(default_config_text())
        return 0
    logsetup.configure()
    registry = default_registry()
    config = _load_or_report(args, registry)
    if isinstance(config, int):
        return config
    logsetup.configure(config.telemetry.logs.level, config.telemetry.logs.encoding)
    from llmtap.selfmetrics import serve_self_metrics
    from llmtap.service import Service, StartError, run

    service = Service(config)
    server = serve_self_metrics(config.telemetry.metrics, service.telemetry)
    try:
        asyncio.run(run(service))
    except StartError as e:
        log.error("%s", e)
        return 1
    finally:
        if server is not None:
            server.shutdown()
    return 0


def cmd_validate(args) -> int:
    logsetup.configure()
    config = _load_or_report(args, default_registry())
    if isinstance(config, int):
        return config
    print(f"configuration is valid: {len(config.pipelines)} pipeline(s)")
    return 0


def cmd_components(args) -> int:
    rows = [(f.kind.value, f.type, f.stability.value, _signals_text(f), f.description)
            for f in default_registry().all()]
    widths = [max(len(r[i]) for r in rows + [("kind", "type", "stability", "signals", "")]) for i in range(4)]
    header = ("kind", "type", "stability", "signals", "description")
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4])
    return 0


def cmd_doctor(args) -> int:
    from llmtap import doctor
    return doctor.main(fix=args.fix)


def _signals_text(factory) -> str:
    parts = sorted(f"{s[0]}->{s[1]}" if isinstance(s, tuple) else str(s) for s in factory.signals)
    return ",".join(parts) or "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmtap", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run the pipelines (the built-in default config without --config)")
    run_p.add_argument("--config", action="append", metavar="FILE",
                       help="config file; repeat to merge several, later files win")
    run_p.add_argument("--print-default-config", action="store_true", help="print the built-in config and exit")
    run_p.set_defaults(func=cmd_run)
    val_p = sub.add_parser("validate", help="check a config and exit non-zero listing every error")
    val_p.add_argument("--config", action="append", metavar="FILE")
    val_p.set_defaults(func=cmd_validate)
    comp_p = sub.add_parser("components", help="list every registered component type")
    comp_p.set_defaults(func=cmd_components)
    doc_p = sub.add_parser("doctor", help="check what eBPF capture needs on this machine and say how to fix it")
    doc_p.add_argument("--fix", action="store_true",
                       help="apply the fixes (mount tracefs/debugfs, install bcc and kernel headers); needs root")
    doc_p.set_defaults(func=cmd_doctor)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
