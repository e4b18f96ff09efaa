"""llmtap's own metrics, named like the collector's (`otelcol_*` → `llmtap_*`),
served in Prometheus format on `service.telemetry.metrics.address` (default
localhost:8888, path /metrics).

Counters carry the item name of their signal in the metric name, as the
collector's do: `llmtap_receiver_accepted_spans`, `..._metric_points`,
`..._log_records` (exposed with the `_total` suffix).
"""

from __future__ import annotations

import os
import time

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily

from llmtap.component import Signal
from llmtap.pdata import ITEM_NAMES


class _ProcessCollector:
    def __init__(self) -> None:
        self._proc = psutil.Process(os.getpid())
        self._start = time.time()

    def collect(self):
        yield GaugeMetricFamily("llmtap_process_uptime", "Seconds since llmtap started", time.time() - self._start)
        yield GaugeMetricFamily("llmtap_process_memory_rss", "Resident memory in bytes", self._proc.memory_info().rss)


class SelfTelemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_ProcessCollector())
        self._counters: dict[str, Counter] = {}

        def counters(role: str, what: str, doc: str, labels: tuple[str, ...]) -> None:
            for item in ITEM_NAMES.values():
                name = f"llmtap_{role}_{what}_{item}"
                self._counters[name] = Counter(name, doc.format(item=item.replace("_", " ")), labels,
                                               registry=self.registry)

        counters("receiver", "accepted", "Number of {item} successfully pushed into the pipeline",
                 ("receiver", "transport"))
        counters("receiver", "refused", "Number of {item} that could not be pushed into the pipeline",
                 ("receiver", "transport"))
        counters("processor", "incoming", "Number of {item} that entered the processor", ("processor",))
        counters("processor", "outgoing", "Number of {item} that left the processor", ("processor",))
        counters("exporter", "sent", "Number of {item} successfully sent to destination", ("exporter",))
        counters("exporter", "send_failed", "Number of {item} in failed attempts to send to destination",
                 ("exporter",))
        counters("exporter", "enqueue_failed", "Number of {item} failed to be added to the sending queue",
                 ("exporter",))
        counters("exporter", "dropped", "Number of {item} given up on, by reason", ("exporter", "reason"))
        self.queue_size = Gauge("llmtap_exporter_queue_size", "Current size of the sending queue (batches)",
                                ("exporter", "data_type"), registry=self.registry)
        self.queue_capacity = Gauge("llmtap_exporter_queue_capacity", "Capacity of the sending queue (batches)",
                                    ("exporter", "data_type"), registry=self.registry)
        self.batch_send_size = Counter("llmtap_processor_batch_batch_send_size_items",
                                       "Items in batches sent by the batch processor", ("processor",),
                                       registry=self.registry)
        self.batch_timeout_trigger = Counter("llmtap_processor_batch_timeout_trigger_send",
                                             "Batches sent because the timeout expired", ("processor",),
                                             registry=self.registry)
        self.batch_size_trigger = Counter("llmtap_processor_batch_batch_size_trigger_send",
                                          "Batches sent because they reached send_batch_size", ("processor",),
                                          registry=self.registry)
        self.memory_refusals = Counter("llmtap_processor_memory_limiter_refused",
                                       "Requests refused because memory use was above the soft limit",
                                       ("processor",), registry=self.registry)

        # The ebpf receiver: what the capture lost, what it chose not to export, what it is attached to.
        self.ebpf_lost_bytes = Counter(
            "llmtap_receiver_ebpf_lost_bytes", "Captured TLS bytes lost before parsing, by reason "
            "(ring_full, read_failed, too_long)", ("receiver", "reason"), registry=self.registry)
        self.ebpf_lost_events = Counter(
            "llmtap_receiver_ebpf_lost_events", "Kernel events lost, by reason", ("receiver", "reason"),
            registry=self.registry)
        self.ebpf_dropped_exchanges = Counter(
            "llmtap_receiver_ebpf_dropped_exchanges", "HTTP exchanges seen but not exported, by reason "
            "(not_llm)", ("receiver", "reason"), registry=self.registry)
        self.ebpf_ignored_bytes = Counter(
            "llmtap_receiver_ebpf_ignored_bytes", "TLS bytes of connections ruled out, by reason "
            "(not_llm, server, not_http, process_filtered, kernel)", ("receiver", "reason"),
            registry=self.registry)
        self.ebpf_attached_files = Gauge(
            "llmtap_receiver_ebpf_attached_files", "Files (libssl, binaries) the TLS probes are attached to",
            ("receiver",), registry=self.registry)
        self.ebpf_open_connections = Gauge(
            "llmtap_receiver_ebpf_open_connections", "TLS connections being reassembled", ("receiver",),
            registry=self.registry)

    def count(self, role: str, what: str, signal: Signal, n: int, **labels: str) -> None:
        if n:
            self._counters[f"llmtap_{role}_{what}_{ITEM_NAMES[signal]}"].labels(**labels).inc(n)

    def value(self, name: str, **labels: str) -> float:
        """Current value of one series (tests and the debug exporter read it)."""
        return self.registry.get_sample_value(name, labels) or 0.0
