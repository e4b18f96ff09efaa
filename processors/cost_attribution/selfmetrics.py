"""The processor's own Prometheus series, in llmtap's self-telemetry registry (:8888).

    llmtap_processor_cost_attribution_unknown_model_spans_total{processor, provider, model}
    llmtap_processor_cost_attribution_invalid_usage_spans_total{processor}
    llmtap_processor_cost_attribution_budget_exceeded_total{processor, dimension, value}
    llmtap_processor_cost_attribution_budget_over{processor, dimension, value}   1 while over, else 0

Model names and dimension values come from the data, so their labels are bounded: the first
LABEL_LIMIT distinct ones of a series family keep their own series, later ones share
OVERFLOW (the log records always name the real value). The series are registered once per
registry, whichever instance of the processor comes first.
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge

from llmtap.telemetry import SelfTelemetry

LABEL_LIMIT = 100
OVERFLOW = "_other"
_PREFIX = "llmtap_processor_cost_attribution_"


class CostMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.unknown_model = Counter(
            _PREFIX + "unknown_model_spans", "Spans with token usage left without a cost: no price is known "
            "for their model", ("processor", "provider", "model"), registry=registry)
        self.invalid_usage = Counter(
            _PREFIX + "invalid_usage_spans", "Spans left without a cost: their token counts contradict each "
            "other", ("processor",), registry=registry)
        self.budget_exceeded = Counter(
            _PREFIX + "budget_exceeded", "Times a dimension value's spend over its window went above its budget",
            ("processor", "dimension", "value"), registry=registry)
        self.budget_over = Gauge(
            _PREFIX + "budget_over", "1 while the value's spend over the window is above its budget",
            ("processor", "dimension", "value"), registry=registry)


_BY_REGISTRY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def metrics_for(telemetry: SelfTelemetry) -> CostMetrics:
    metrics = _BY_REGISTRY.get(telemetry.registry)
    if metrics is None:
        metrics = _BY_REGISTRY[telemetry.registry] = CostMetrics(telemetry.registry)
    return metrics


class BoundedLabels:
    """Label tuples for one series family: the first `limit` distinct ones as they are, then OVERFLOW."""

    def __init__(self, limit: int = LABEL_LIMIT):
        self.limit = limit
        self._seen: set[tuple[str, ...]] = set()

    def __call__(self, *values: str) -> tuple[str, ...]:
        if values in self._seen:
            return values
        if len(self._seen) < self.limit:
            self._seen.add(values)
            return values
        return (OVERFLOW,) * len(values)
