"""What one model call cost: token counts × per-million-token rates, by token kind.

`Rates` holds a model's prices in USD per million tokens for the kinds a GenAI span
reports: input, output, cache_read, cache_write, reasoning. A kind that is not
priced apart (None) is billed at its parent's rate — cache reads and writes at the
input rate, reasoning at the output rate — which is how the providers bill and how
genai-prices decomposes usage. Any rate may be `Tiered`: the price of the highest
tier whose threshold the call's *total* input tokens (cached ones included) exceed
applies to every token of that kind (the "cliff" rule of Anthropic's and Google's
long-context prices, e.g. above 200k input tokens).

`price(usage, rates)` splits the call into a partition, so the parts add up to the
total (plus a per-request fee, where a price list has one):

    input        input_tokens - cache_read - cache_write   (the contract's v1.41 arithmetic:
    cache_read   cache_read tokens                          input_tokens includes cached tokens)
    cache_write  cache_write tokens
    output       output_tokens - reasoning                  (output includes reasoning)
    reasoning    reasoning tokens

Usage that contradicts itself (cached tokens above input, reasoning above output,
negative counts) is refused with a `UsageError`, never priced. Money is Decimal until
it is written onto the span. Cost: a few Decimal operations per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

MILLION = Decimal(1_000_000)
KINDS = ("input", "cache_read", "cache_write", "output", "reasoning")


@dataclass(frozen=True)
class Tiered:
    """A rate that changes with the call's total input tokens: `tiers` are (threshold, rate)
    pairs in ascending order; a tier applies once the input is strictly above its threshold."""

    base: Decimal
    tiers: tuple[tuple[int, Decimal], ...]

    def at(self, total_input_tokens: int) -> Decimal:
        for threshold, rate in reversed(self.tiers):
            if total_input_tokens > threshold:
                return rate
        return self.base


Rate = Decimal | Tiered


@dataclass(frozen=True)
class Rates:
    """USD per million tokens. input and output are always priced (0 means free: a
    local model); the others may be None: billed at the parent kind's rate."""

    input: Rate
    output: Rate
    cache_read: Rate | None = None
    cache_write: Rate | None = None
    reasoning: Rate | None = None
    per_request: Decimal = Decimal(0)  # USD per call, e.g. a search fee


@dataclass(frozen=True)
class TokenUsage:
    """Token counts as the v1.41 span reports them: `input` includes cache reads and
    writes, `output` includes reasoning."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int = 0


@dataclass(frozen=True)
class Cost:
    """USD per token kind (only kinds the call used, plus input and output), and the total."""

    parts: dict[str, Decimal] = field(default_factory=dict)
    total: Decimal = Decimal(0)


class UsageError(ValueError):
    """Token counts that cannot all be true at once."""


def _rate(rate: Rate, total_input: int) -> Decimal:
    return rate.at(total_input) if isinstance(rate, Tiered) else rate


def price(usage: TokenUsage, rates: Rates) -> Cost:
    for kind in KINDS:
        if getattr(usage, kind) < 0:
            raise UsageError(f"{kind} tokens are negative ({getattr(usage, kind)})")
    uncached = usage.input - usage.cache_read - usage.cache_write
    if uncached < 0:
        raise UsageError(f"cache_read ({usage.cache_read}) + cache_write ({usage.cache_write}) tokens exceed "
                         f"input tokens ({usage.input}), which include them")
    visible = usage.output - usage.reasoning
    if visible < 0:
        raise UsageError(f"reasoning tokens ({usage.reasoning}) exceed output tokens ({usage.output}), "
                         f"which include them")
    n = usage.input
    input_rate, output_rate = _rate(rates.input, n), _rate(rates.output, n)
    per_kind = {
        "input": (uncached, input_rate),
        "cache_read": (usage.cache_read, input_rate if rates.cache_read is None else _rate(rates.cache_read, n)),
        "cache_write": (usage.cache_write, input_rate if rates.cache_write is None else _rate(rates.cache_write, n)),
        "output": (visible, output_rate),
        "reasoning": (usage.reasoning, output_rate if rates.reasoning is None else _rate(rates.reasoning, n)),
    }
    parts = {kind: Decimal(tokens) * rate / MILLION for kind, (tokens, rate) in per_kind.items()
             if tokens or kind in ("input", "output")}
    return Cost(parts, sum(parts.values(), rates.per_request))
