"""The user's price file: negotiated prices, private or fine-tuned models, local models at zero.

    version: acme-contract-2025-06          # optional; recorded in llmtap.cost.price_source
    models:                                 # first matching entry wins: specific ones first
      - provider: openai                    # optional: gen_ai.provider.name; absent = any provider
        model: gpt-4o                       # one of model (exact), model_prefix, model_regex
        input: 2.00                         # USD per million tokens; 0 = free
        output: 8.00
        cache_read: 1.00                    # optional: absent = billed at the input rate
        cache_write: 2.50                   # optional: absent = billed at the input rate
        reasoning: 8.00                     # optional: absent = billed at the output rate
        tiers:                              # optional: rates above a total input size
          - above_input_tokens: 200000
            input: 4.00
            output: 12.00
      - provider: ollama
        model_regex: ".*"
        input: 0
        output: 0

Model names match case-insensitively; a regex must match the whole name. Every problem
is reported with its place in the file ("models[2].input: ..."), all at once.
Cost: the file is read once, at start; a lookup tries the entries in order.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from llmtap.processors.cost_attribution.prices import Rate, Rates, Tiered

_KINDS = ("input", "output", "cache_read", "cache_write", "reasoning")
_MATCHERS = ("model", "model_prefix", "model_regex")
_ENTRY_KEYS = ("provider", *_MATCHERS, *_KINDS, "tiers")
_TIER_KEYS = ("above_input_tokens", *_KINDS)


class PriceFileError(ValueError):
    def __init__(self, path: str, problems: list[str]):
        super().__init__(f"{path}: " + "; ".join(problems))
        self.path = path
        self.problems = problems


@dataclass(frozen=True)
class PriceRule:
    provider: str | None  # lowercase; None: any
    model: str | None  # lowercase exact name
    prefix: str | None  # lowercase
    regex: re.Pattern | None
    rates: Rates

    def matches(self, provider: str, model: str) -> bool:
        if self.provider is not None and self.provider != provider.lower():
            return False
        name = model.lower()
        if self.model is not None:
            return name == self.model
        if self.prefix is not None:
            return name.startswith(self.prefix)
        return self.regex is not None and self.regex.fullmatch(model) is not None


@dataclass(frozen=True)
class PriceFile:
    path: str
    version: str | None
    rules: tuple[PriceRule, ...]

    @property
    def source(self) -> str:
        return f"file:{self.path}" + (f" {self.version}" if self.version else "")

    def rates(self, provider: str, model: str) -> Rates | None:
        for rule in self.rules:
            if rule.matches(provider, model):
                return rule.rates
        return None


def _usd(value: Any, where: str, problems: list[str]) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        problems.append(f"{where}: expected a price in USD per million tokens (a number >= 0), got {value!r}")
        return None
    return Decimal(str(value))  # str: 0.1 stays 0.1, not the binary float's 0.1000000000000000055…


def _unknown_keys(raw: dict, known: tuple[str, ...], where: str, problems: list[str]) -> None:
    for key in raw:
        if key not in known:
            problems.append(f"{where}.{key}: unknown key (known keys: {', '.join(known)})")


def _tiers(raw: Any, base: dict[str, Decimal], where: str, problems: list[str]) -> dict[str, list]:
    """Per kind, its (threshold, rate) pairs."""
    by_kind: dict[str, list[tuple[int, Decimal]]] = {}
    if not isinstance(raw, list):
        problems.append(f"{where}: expected a list of tiers")
        return by_kind
    previous = -1
    for i, tier in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(tier, dict):
            problems.append(f"{at}: expected a map with above_input_tokens and the rates that change")
            continue
        _unknown_keys(tier, _TIER_KEYS, at, problems)
        threshold = tier.get("above_input_tokens")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            problems.append(f"{at}.above_input_tokens: expected a token count (an integer >= 0), got {threshold!r}")
            continue
        if threshold <= previous:
            problems.append(f"{at}.above_input_tokens: tiers must be in ascending order; "
                            f"{threshold} follows {previous}")
        previous = threshold
        kinds = [k for k in _KINDS if k in tier]
        if not kinds:
            problems.append(f"{at}: names no rate (one of {', '.join(_KINDS)})")
        for kind in kinds:
            rate = _usd(tier[kind], f"{at}.{kind}", problems)
            if kind not in base:
                problems.append(f"{at}.{kind}: the entry has no base {kind} price for this tier to change")
            elif rate is not None:
                by_kind.setdefault(kind, []).append((threshold, rate))
    return by_kind


def _rule(raw: Any, where: str, problems: list[str]) -> PriceRule | None:
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a map (provider, model, input, output, ...)")
        return None
    before = len(problems)
    _unknown_keys(raw, _ENTRY_KEYS, where, problems)
    provider = raw.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider):
        problems.append(f"{where}.provider: expected a gen_ai.provider.name, e.g. openai; got {provider!r}")
    matchers = [k for k in _MATCHERS if k in raw]
    if len(matchers) != 1:
        problems.append(f"{where}: needs exactly one of {', '.join(_MATCHERS)}"
                        + (f" (has {', '.join(matchers)})" if matchers else ""))
    pattern = None
    for key in matchers:
        text = raw[key]
        if not isinstance(text, str) or not text:
            problems.append(f"{where}.{key}: expected a model name, got {text!r}")
        elif key == "model_regex":
            try:
                pattern = re.compile(text, re.IGNORECASE)
            except re.error as e:
                problems.append(f"{where}.model_regex: invalid regular expression {text!r}: {e}")
    base: dict[str, Decimal] = {}
    for kind in _KINDS:
        if kind in raw:
            if (rate := _usd(raw[kind], f"{where}.{kind}", problems)) is not None:
                base[kind] = rate
        elif kind in ("input", "output"):
            problems.append(f"{where}.{kind}: required (USD per million tokens; 0 for a free model)")
    tiers = _tiers(raw["tiers"], base, f"{where}.tiers", problems) if "tiers" in raw else {}
    if len(problems) > before:
        return None
    rates: dict[str, Rate] = {k: Tiered(v, tuple(tiers[k])) if k in tiers else v for k, v in base.items()}
    return PriceRule(
        provider=provider.lower() if provider else None,
        model=raw["model"].lower() if "model" in raw else None,
        prefix=raw["model_prefix"].lower() if "model_prefix" in raw else None,
        regex=pattern,
        rates=Rates(**rates),
    )


def load_price_file(path: str) -> PriceFile:
    """Read and check the file; PriceFileError lists every problem."""
    resolved = str(Path(path).expanduser().resolve())
    try:
        raw = yaml.safe_load(Path(resolved).read_text(encoding="utf-8"))
    except OSError as e:
        raise PriceFileError(path, [f"cannot read: {e.strerror or e}"]) from None
    except yaml.YAMLError as e:
        raise PriceFileError(path, [f"not valid YAML: {e}"]) from None
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise PriceFileError(path, ["expected a map with a 'models' list"])
    _unknown_keys(raw, ("version", "models"), "", problems)
    problems = [p.lstrip(".") for p in problems]
    version = raw.get("version")
    if version is not None and not isinstance(version, (str, int, float, date)):  # 2025-06-01 is a YAML date
        problems.append(f"version: expected a string, got {version!r}")
    models = raw.get("models")
    if not isinstance(models, list):
        problems.append("models: expected a list of model prices")
        models = []
    rules = [_rule(entry, f"models[{i}]", problems) for i, entry in enumerate(models)]
    if problems:
        raise PriceFileError(path, problems)
    return PriceFile(resolved, str(version) if version is not None else None, tuple(r for r in rules if r))
