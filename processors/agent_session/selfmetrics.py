"""The processor's own Prometheus series, in llmtap's self-telemetry registry (:8888).

    llmtap_processor_agent_session_anomalies_total{processor, kind}      tool_loop | prompt_loop | runaway_cost
    llmtap_processor_agent_session_tool_executions_total{processor}      execute_tool spans made
    llmtap_processor_agent_session_evicted_sessions_total{processor}     sessions dropped for room (max_sessions)
    llmtap_processor_agent_session_sessions{processor}                   sessions held now

Every label value is fixed or a component id: no series grows with the data. The series are
registered once per registry, whichever instance of the processor comes first.
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge

from llmtap.telemetry import SelfTelemetry

_PREFIX = "llmtap_processor_agent_session_"


class SessionMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.anomalies = Counter(
            _PREFIX + "anomalies", "Anomalies raised on agent sessions (once per session and kind), by kind",
            ("processor", "kind"), registry=registry)
        self.tool_executions = Counter(
            _PREFIX + "tool_executions", "execute_tool spans made: tool calls matched with the processes that "
            "carried them out", ("processor",), registry=registry)
        self.evicted_sessions = Counter(
            _PREFIX + "evicted_sessions", "Sessions whose state was dropped before their time because "
            "max_sessions were held", ("processor",), registry=registry)
        self.sessions = Gauge(
            _PREFIX + "sessions", "Sessions whose state is held", ("processor",), registry=registry)


_BY_REGISTRY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def metrics_for(telemetry: SelfTelemetry) -> SessionMetrics:
    metrics = _BY_REGISTRY.get(telemetry.registry)
    if metrics is None:
        metrics = _BY_REGISTRY[telemetry.registry] = SessionMetrics(telemetry.registry)
    return metrics
