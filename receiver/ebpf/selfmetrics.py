"""The receiver's own series for process capture, in llmtap's self-telemetry registry (:8888).

    llmtap_receiver_ebpf_process_events_total{receiver, kind}          exec, fork, exit events handled
    llmtap_receiver_ebpf_process_events_lost_total{receiver, reason}   ring_full: the kernel had no room
    llmtap_receiver_ebpf_process_args_unread_total{receiver}           exec events whose argv could not be read
    llmtap_receiver_ebpf_processes_emitted_total{receiver}             process spans made
    llmtap_receiver_ebpf_processes_not_emitted_total{receiver, reason} processes counted instead:
        not_agent    in no agent's tree (within the window after it exited)
        table_full   forgotten to stay within processes.max_tracked
        exit_lost    its pid was reused before its exit was seen (a lost event)
    llmtap_receiver_ebpf_processes_tracked{receiver}                   records held now

Registered once per registry, whichever receiver comes first.
"""

from __future__ import annotations

import weakref

from prometheus_client import CollectorRegistry, Counter, Gauge

from llmtap.telemetry import SelfTelemetry

_PREFIX = "llmtap_receiver_ebpf_"


class ProcessMetrics:
    def __init__(self, registry: CollectorRegistry):
        self.events = Counter(_PREFIX + "process_events", "Process events (exec, fork, exit) handled, by kind",
                              ("receiver", "kind"), registry=registry)
        self.events_lost = Counter(_PREFIX + "process_events_lost", "Process events the kernel could not "
                                   "deliver, by reason (ring_full)", ("receiver", "reason"), registry=registry)
        self.args_unread = Counter(_PREFIX + "process_args_unread", "Exec events sent without their "
                                   "arguments (the kernel could not read them)", ("receiver",), registry=registry)
        self.emitted = Counter(_PREFIX + "processes_emitted", "Process spans made", ("receiver",),
                               registry=registry)
        self.not_emitted = Counter(_PREFIX + "processes_not_emitted", "Processes seen and not reported, by "
                                   "reason (not_agent, table_full, exit_lost)", ("receiver", "reason"),
                                   registry=registry)
        self.tracked = Gauge(_PREFIX + "processes_tracked", "Process records held (running, and finished "
                             "within the window)", ("receiver",), registry=registry)


_BY_REGISTRY: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def process_metrics(telemetry: SelfTelemetry) -> ProcessMetrics:
    metrics = _BY_REGISTRY.get(telemetry.registry)
    if metrics is None:
        metrics = _BY_REGISTRY[telemetry.registry] = ProcessMetrics(telemetry.registry)
    return metrics
