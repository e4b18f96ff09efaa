"""The processor's own Prometheus series, in llmtap's self-telemetry registry (:8888).

    llmtap_processor_pii_redaction_findings_total{processor, entity_type}   values redacted
    llmtap_processor_pii_redaction_failed_items_total{processor, signal, reason}
        spans / log records whose redaction failed (reason: time_budget, error) and whose
        content attributes were therefore dropped (fail closed)
    llmtap_processor_pii_redaction_dropped_attributes_total{processor, reason}
        attributes removed: fail_closed, drop_operator, binary (bytes that are not text)

Entity types are the configured ones (a bounded set), never values.
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter

from llmtap.telemetry import SelfTelemetry

_PREFIX = "llmtap_processor_pii_redaction_"


class RedactionMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.findings = Counter(_PREFIX + "findings", "Values redacted, by entity type",
                                ("processor", "entity_type"), registry=registry)
        self.failed_items = Counter(
            _PREFIX + "failed_items", "Spans and log records whose redaction failed or ran past its time budget: "
            "their content attributes were dropped", ("processor", "signal", "reason"), registry=registry)
        self.dropped_attributes = Counter(_PREFIX + "dropped_attributes", "Attributes removed, by reason",
                                          ("processor", "reason"), registry=registry)


_BY_REGISTRY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def metrics_for(telemetry: SelfTelemetry) -> RedactionMetrics:
    metrics = _BY_REGISTRY.get(telemetry.registry)
    if metrics is None:
        metrics = _BY_REGISTRY[telemetry.registry] = RedactionMetrics(telemetry.registry)
    return metrics
