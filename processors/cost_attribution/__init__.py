"""`cost_attribution` processor: what each model call cost, and for whom (docs/genai.md).

Per GenAI span (one with gen_ai.operation.name, gen_ai.provider.name or a model):
- attribution: each configured dimension's first source with a value is written as
  `llmtap.attribution.<dimension>` (attribution.py); a value already on the span stays;
- cost, for a span with token usage (gen_ai.usage.*) whose operation is a model call (not
  invoke_agent / create_agent / execute_tool, whose usage, where an instrumentation sums it
  there, was already priced on the calls beneath them): the model's rates come from the
  user's price_file (price_file.py), else from genai-prices' bundled data (bundled.py), for
  the response model (what served the call), then the request model, at the span's start
  time and OpenAI service tier. Then `gen_ai.usage.cost` (USD total), `llmtap.cost.<kind>`
  (prices.py: a partition of the total by token kind), `llmtap.cost.currency` = USD,
  `llmtap.cost.estimated` (the tokens were estimated: llmtap.usage.estimated) and
  `llmtap.cost.price_source`. A model with no price gets no cost — never a made-up zero —
  but `llmtap.cost.error`, a count in self-telemetry and a warning naming it (once per
  model per hour); so do token counts that contradict each other;
- budgets: a priced span's cost is added to the rolling spend of its dimension values
  (budgets.py); a value going over its budget is logged once (dimension, value, spend,
  budget, window) and counted (selfmetrics.py), and logged again when back within it.
No span is dropped or left unpassed for a problem of its own.

Cost: per span, one pass over its attributes reading a fixed set of keys (large content
attributes are not converted), a cached price lookup and a few Decimal operations.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Iterable

from google.protobuf.message import Message
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtap import attributes
from llmtap.component import Consumer, Factory, Kind, Settings, Signal, Stability
from llmtap.configtypes import Duration, doc
from llmtap.processorhelper import SpanProcessor
from llmtap.processors.cost_attribution.attribution import DIMENSION_NAME, PREFIX, Attribution, parse_source
from llmtap.processors.cost_attribution.budgets import Budget, Crossing
from llmtap.processors.cost_attribution.price_file import PriceFile, PriceFileError, load_price_file
from llmtap.processors.cost_attribution.prices import Rates, TokenUsage, UsageError, price
from llmtap.processors.cost_attribution.selfmetrics import OVERFLOW, BoundedLabels, metrics_for

if TYPE_CHECKING:
    from llmtap.processors.cost_attribution.bundled import BundledPrices

COST = "gen_ai.usage.cost"
COST_PREFIX = "llmtap.cost."
CURRENCY = "llmtap.cost.currency"
ESTIMATED_COST = "llmtap.cost.estimated"
PRICE_SOURCE = "llmtap.cost.price_source"
ERROR_MARKER = "llmtap.cost.error"  # why a span with token usage has no cost
ESTIMATED_USAGE = "llmtap.usage.estimated"

OPERATION, PROVIDER = "gen_ai.operation.name", "gen_ai.provider.name"
REQUEST_MODEL, RESPONSE_MODEL = "gen_ai.request.model", "gen_ai.response.model"
# Token kind → the attributes that report it (the second name: the development conventions').
USAGE = {
    "input": ("gen_ai.usage.input_tokens",),
    "output": ("gen_ai.usage.output_tokens",),
    "cache_read": ("gen_ai.usage.cache_read.input_tokens",),
    "cache_write": ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens"),
    "reasoning": ("gen_ai.usage.reasoning.output_tokens",),
}
SERVICE_TIER = ("openai.response.service_tier", "openai.request.service_tier")
NOT_PRICED_OPERATIONS = frozenset({"invoke_agent", "create_agent", "execute_tool"})
_READ = frozenset({OPERATION, PROVIDER, REQUEST_MODEL, RESPONSE_MODEL, ESTIMATED_USAGE, *SERVICE_TIER,
                   *(k for keys in USAGE.values() for k in keys)})
WARN_INTERVAL = 3600.0  # seconds between two warnings about the same model
_WARNED_MAX = 10_000  # models remembered for that; beyond, the memory is cleared


@dataclass
class BudgetConfig:
    dimension: str = field(default="", metadata=doc(
        "The attribution dimension (a key of `dimensions`) each of whose values gets this budget."))
    limit_usd: float | None = field(default=None, metadata=doc(
        "USD each value may spend within the window. Unset: only the values listed in `values` have a budget."))
    window: Duration = field(default=Duration(86400), metadata=doc(
        "The rolling window spend is summed over; spend leaves it in steps of 1/60 of the window."))
    values: dict[str, float] = field(default_factory=dict, metadata=doc(
        "Budgets in USD for particular values, overriding limit_usd, e.g. {acme: 100}."))
    max_values: int = field(default=10000, metadata=doc(
        "Most values whose spend is tracked at once (a value with no spend left in the window is forgotten); "
        "the spend of further values is not tracked, and a warning says so."))


@dataclass
class Config:
    price_file: str = field(default="", metadata=doc(
        "A YAML file of model prices (USD per million tokens) that override or add to the bundled ones: "
        "negotiated prices, fine-tuned or private models, local models at 0. See docs/genai.md."))
    bundled_prices: bool = field(default=True, metadata=doc(
        "Use the prices bundled with the installed genai-prices package for models the price_file does not "
        "list. Never updated at run time."))
    dimensions: dict[str, list[str]] = field(default_factory=dict, metadata=doc(
        "Attribution dimensions: name → sources tried in order (header:NAME, span:KEY, resource:KEY, "
        "process:KEY), e.g. {tenant: [header:x-tenant-id, resource:k8s.namespace.name]}. Written as "
        "llmtap.attribution.<name>."))
    budgets: list[BudgetConfig] = field(default_factory=list, metadata=doc(
        "Budgets per dimension value over a rolling window (dimension, limit_usd, window, values, max_values); "
        "crossing one is logged and counted."))

    def validate(self) -> list[str]:
        errors = []
        for name, sources in self.dimensions.items():
            if not DIMENSION_NAME.fullmatch(name):
                errors.append(f"dimensions.{name}: a dimension name is letters, digits and _ (it becomes "
                              f"llmtap.attribution.{name} and a metric label)")
            if not sources:
                errors.append(f"dimensions.{name}: list at least one source, e.g. header:x-tenant-id")
            for i, source in enumerate(sources):
                try:
                    parse_source(source)
                except ValueError as e:
                    errors.append(f"dimensions.{name}[{i}]: {e}")
        for i, budget in enumerate(self.budgets):
            at = f"budgets[{i}]"
            if budget.dimension not in self.dimensions:
                known = ", ".join(self.dimensions) or "none configured"
                errors.append(f"{at}.dimension: {budget.dimension!r} is not a configured dimension ({known})")
            if budget.limit_usd is None and not budget.values:
                errors.append(f"{at}.limit_usd: set limit_usd, values, or both")
            if budget.limit_usd is not None and budget.limit_usd < 0:
                errors.append(f"{at}.limit_usd: must not be negative; got {budget.limit_usd}")
            errors += [f"{at}.values.{k}: must not be negative; got {v}" for k, v in budget.values.items() if v < 0]
            if budget.window <= 0:
                errors.append(f"{at}.window: must be greater than 0")
            if budget.max_values < 1:
                errors.append(f"{at}.max_values: must be at least 1; got {budget.max_values}")
        if self.price_file:
            try:
                load_price_file(self.price_file)
            except PriceFileError as e:
                errors += [f"price_file: {e.path}: {problem}" for problem in e.problems]
        elif not self.bundled_prices:
            errors.append("bundled_prices: with the bundled prices off, a price_file is needed "
                          "(nothing would be priced)")
        return errors


class PriceTable:
    """The user's file first, then the bundled prices; in each, the response model before the request model."""

    def __init__(self, price_file: PriceFile | None, bundled: BundledPrices | None):
        self.price_file = price_file
        self.bundled = bundled

    def lookup(self, provider: str, models: list[str], when: datetime,
               service_tier: str | None) -> tuple[Rates, str] | None:
        if self.price_file is not None:
            for model in models:
                if (rates := self.price_file.rates(provider, model)) is not None:
                    return rates, self.price_file.source
        if self.bundled is not None:
            for model in models:
                if (rates := self.bundled.rates(provider, model, when, service_tier)) is not None:
                    return rates, self.bundled.source
        return None


def _read(kvs: Iterable, keys: frozenset[str]) -> dict[str, Any]:
    """Only the attributes we use: converting a content attribute would copy a large string."""
    return {kv.key: attributes.to_python(kv.value) for kv in kvs if kv.key in keys or kv.key.startswith(PREFIX)}


def _count(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) else None


def _usage(attrs: dict[str, Any]) -> TokenUsage | None:
    counts = {kind: next((c for k in keys if (c := _count(attrs.get(k))) is not None), None)
              for kind, keys in USAGE.items()}
    if counts["input"] is None and counts["output"] is None:
        return None
    return TokenUsage(**{kind: n or 0 for kind, n in counts.items()})


def _request_time(span: Span) -> datetime:
    """When the call was made: prices change over time. Only a span without a usable timestamp
    is priced at the current prices."""
    ns = span.start_time_unix_nano or span.end_time_unix_nano
    try:
        return datetime.fromtimestamp(ns / 1e9, UTC) if ns else datetime.now(UTC)
    except (OverflowError, ValueError, OSError):  # beyond year 9999
        return datetime.now(UTC)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


class CostAttributionProcessor(SpanProcessor):
    def __init__(self, settings: Settings, config: Config, signal: Signal, next: Consumer,
                 *, clock: Callable[[], float] = time.monotonic):
        super().__init__(settings, config, signal, next)
        self._label = str(self.id)
        self._metrics = metrics_for(settings.telemetry)
        self._clock = clock
        bundled = None
        if config.bundled_prices:
            # Imported here: genai-prices' data costs a quarter of a second to import, which every
            # llmtap command that lists the components would otherwise pay.
            from llmtap.processors.cost_attribution.bundled import BundledPrices
            bundled = BundledPrices()
        self._prices = PriceTable(load_price_file(config.price_file) if config.price_file else None, bundled)
        self._attribution = Attribution(config.dimensions)
        self._span_keys = _READ | self._attribution.span_keys
        self._resource_keys = self._attribution.resource_keys
        self._budgets = [Budget(b.dimension, float(b.window), b.limit_usd, b.values, b.max_values)
                         for b in config.budgets]
        self._untracked_seen = [0] * len(self._budgets)
        self._warned: dict[tuple, float] = {}
        self._model_labels = BoundedLabels()
        self._budget_labels = BoundedLabels()

    def process_traces(self, request: Message) -> None:
        now = self._clock()
        self._sweep_budgets(now)
        for rs in request.resource_spans:
            resource = _read(rs.resource.attributes, self._resource_keys) if self._resource_keys else {}
            for ss in rs.scope_spans:
                for span in ss.spans:
                    self._process_span(span, resource, now)

    def _process_span(self, span: Span, resource: dict[str, Any], now: float) -> None:
        """Attribute and price one span in place; never raises."""
        try:
            attrs = _read(span.attributes, self._span_keys)
            if not any(attrs.get(k) for k in (OPERATION, PROVIDER, REQUEST_MODEL, RESPONSE_MODEL)):
                return
            updates: dict[str, Any] = {}
            dimensions = {k[len(PREFIX):]: v for k, v in attrs.items() if k.startswith(PREFIX) and isinstance(v, str)}
            for name, value in self._attribution.resolve(attrs, resource).items():
                if name not in dimensions:
                    dimensions[name] = updates[PREFIX + name] = value
            cost = self._price(span, attrs, updates)
            attributes.update(span.attributes, updates)
            if cost is not None:
                self._spend(dimensions, float(cost), now)
        except Exception as e:  # one bad span must not cost the batch
            self.logger.warning("cannot price span %r: %s: %s", span.name, type(e).__name__, e)
            attributes.update(span.attributes, {ERROR_MARKER: f"internal error: {type(e).__name__}: {e}"})

    def _price(self, span: Span, attrs: dict[str, Any], updates: dict[str, Any]) -> Decimal | None:
        if attrs.get(OPERATION) in NOT_PRICED_OPERATIONS:
            return None
        usage = _usage(attrs)
        if usage is None:
            return None
        provider = _text(attrs.get(PROVIDER))
        models = list(dict.fromkeys(m for k in (RESPONSE_MODEL, REQUEST_MODEL) if (m := _text(attrs.get(k)))))
        tier = next((t for k in SERVICE_TIER if (t := _text(attrs.get(k)).lower())), None)
        found = self._prices.lookup(provider, models, _request_time(span), tier) if models else None
        if found is None:
            self._unknown_model(provider, models)
            updates[ERROR_MARKER] = (f"no price for model {' / '.join(map(repr, models))} (provider {provider!r})"
                                     if models else "the span names no model to price")
            return None
        rates, source = found
        try:
            cost = price(usage, rates)
        except UsageError as e:
            self._metrics.invalid_usage.labels(self._label).inc()
            self._warn(("invalid", provider, models[0]), {"provider": provider, "model": models[0]},
                       "token usage of model %r (provider %r) cannot be priced: %s", models[0], provider, e)
            updates[ERROR_MARKER] = f"invalid usage: {e}"
            return None
        updates[COST] = float(cost.total)
        updates.update({COST_PREFIX + kind: float(usd) for kind, usd in cost.parts.items()})
        updates[CURRENCY] = "USD"
        updates[ESTIMATED_COST] = attrs.get(ESTIMATED_USAGE) is True
        updates[PRICE_SOURCE] = source
        return cost.total

    def _unknown_model(self, provider: str, models: list[str]) -> None:
        model = models[0] if models else ""
        self._metrics.unknown_model.labels(self._label, *self._model_labels(provider, model)).inc()
        self._warn(("unknown", provider, model), {"provider": provider, "model": model},
                   "no price for model %r (provider %r): its spans get no cost; add it to a price_file",
                   model, provider)

    def _warn(self, key: tuple, fields: dict[str, Any], message: str, *args: Any) -> None:
        """Log at most once per WARN_INTERVAL for the same key: a problem of every span of a model
        would otherwise flood the log."""
        now = self._clock()
        last = self._warned.get(key)
        if last is not None and now - last < WARN_INTERVAL:
            return
        if len(self._warned) >= _WARNED_MAX:
            self._warned.clear()
        self._warned[key] = now
        self.logger.warning(message, *args, extra={"fields": {"processor": self._label, **fields}})

    def _spend(self, dimensions: dict[str, str], usd: float, now: float) -> None:
        for i, budget in enumerate(self._budgets):
            value = dimensions.get(budget.dimension)
            if value is None:
                continue
            crossing = budget.add(value, usd, now)
            if crossing is not None:
                self._report(crossing, over=True)
            if budget.untracked != self._untracked_seen[i]:
                self._untracked_seen[i] = budget.untracked
                self._warn(("untracked", budget.dimension), {"dimension": budget.dimension},
                           "budget on %r: already tracking %d values; the "
                           "spend of further ones is not tracked (raise max_values?)", budget.dimension,
                           budget.max_values)

    def _sweep_budgets(self, now: float) -> None:
        for budget in self._budgets:
            for back in budget.sweep(now):
                self._report(back, over=False)

    def _report(self, crossing: Crossing, over: bool) -> None:
        labels = self._budget_labels(crossing.dimension, crossing.value)
        fields = {"processor": self._label, "dimension": crossing.dimension, "value": crossing.value,
                  "spend_usd": round(crossing.spend, 6), "budget_usd": crossing.budget, "window_s": crossing.window}
        if over:
            self._metrics.budget_exceeded.labels(self._label, *labels).inc()
            self.logger.warning("budget exceeded: %s %r spent %.2f USD of its %.2f USD budget over %gs",
                                crossing.dimension, crossing.value, crossing.spend, crossing.budget,
                                crossing.window, extra={"fields": fields})
        else:
            self.logger.info("back within budget: %s %r has spent %.2f USD of its %.2f USD budget over %gs",
                             crossing.dimension, crossing.value, crossing.spend, crossing.budget,
                             crossing.window, extra={"fields": fields})
        if labels[1] != OVERFLOW:  # a shared overflow series cannot say whether "it" is over
            self._metrics.budget_over.labels(self._label, *labels).set(1 if over else 0)


factory = Factory(
    type="cost_attribution",
    kind=Kind.PROCESSOR,
    config_class=Config,
    create=CostAttributionProcessor,
    signals=frozenset({Signal.TRACES}),
    stability=Stability.ALPHA,
    description="Prices each GenAI span's token usage (genai-prices' bundled data and a user price file), "
                "attributes it to tenants, users or agents, and watches budgets per attribution value",
)
