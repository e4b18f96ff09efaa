"""`prometheus` exporter: serves the OTLP metrics it is given on a Prometheus scrape
endpoint (GET `/metrics` on `endpoint`), translated as the OpenTelemetry →
Prometheus compatibility spec and the collector's prometheusexporter translate them:

- names: every run of characters other than ASCII letters and digits becomes one `_`
  (`gen_ai.client.token.usage` → `gen_ai_client_token_usage`); the unit is appended
  as a word unless the name already has it — UCUM units spelled out (`s` → `seconds`,
  `By` → `bytes`, `x/s` → `x_per_second`), units in braces dropped (`{token}` → none),
  others appended as they are (`USD` → `_USD`); monotonic sums end in `_total`;
  `namespace` is prefixed.
- types: monotonic sum → counter, gauge and non-monotonic cumulative sum → gauge,
  histogram → `_bucket{le=…}` / `_sum` / `_count`, summary → quantiles / `_sum` /
  `_count`. Delta monotonic sums and delta histograms are accumulated into cumulative
  series (Prometheus knows only cumulative); a delta non-monotonic sum cannot be, and
  exponential histograms have no text form: those are dropped and counted.
- labels: attribute keys sanitized like names (a leading digit gets `key_`), values as
  strings; keys that collide after sanitizing have their values joined with `;`.
  Each series gets `job` (`service.namespace/service.name`) and `instance`
  (`service.instance.id`) from its resource and `otel_scope_name` /
  `otel_scope_version`; the other resource attributes go on one `target_info` series per
  resource, or on every series with `resource_to_telemetry_conversion.enabled`.
  `const_labels` are added to all. Scrape with `honor_labels: true` to keep `job` and
  `instance` as sent.

A cumulative point replaces the series' previous value (an older point is ignored);
a series not updated for `metric_expiration` is no longer served. With
`enable_open_metrics`, a scraper that asks for OpenMetrics gets it. Cost: consume is
linear in the points it is given; a scrape is linear in the series held, which is what
upstream sends (the genai_metrics connector bounds it) within the expiration window.
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from aiohttp import web
from google.protobuf.message import Message
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality, DataPointFlags
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from llmtap.attributes import as_dict, to_python
from llmtap.component import Exporter, Factory, Host, Kind, Settings, Signal, Stability
from llmtap.configtypes import Duration, doc
from llmtap.selfmetrics import split_endpoint

# UCUM unit → the word Prometheus uses (the collector's translator table).
UNIT_WORDS = {
    "d": "days", "h": "hours", "min": "minutes", "s": "seconds", "ms": "milliseconds", "us": "microseconds",
    "ns": "nanoseconds", "By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes",
    "TiBy": "tibibytes", "KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes",
    "m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams", "Cel": "celsius",
    "Hz": "hertz", "1": "", "%": "percent",
}
PER_UNIT_WORDS = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "mo": "month", "y": "year"}
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_NOT_LABEL = re.compile(r"[^A-Za-z0-9_]")
RESOURCE_IDENTITY = ("service.name", "service.namespace", "service.instance.id")


def _words(text: str) -> list[str]:
    return [w for w in _NOT_ALNUM.split(text) if w]


def unit_parts(unit: str) -> tuple[str, str]:
    """The words a unit adds to a name, main and per: `s` → (seconds, ""), `By/s` → (bytes, second).
    Units in braces are annotations and add nothing."""
    def word(text: str, table: dict[str, str]) -> str:
        text = text.strip()
        if not text or "{" in text or "}" in text:
            return ""
        return "_".join(_words(table.get(text, text)))

    main, _, per = unit.partition("/")
    return word(main, UNIT_WORDS), word(per, PER_UNIT_WORDS)


def unit_suffix(unit: str) -> str:
    """What OpenMetrics calls the unit of a family: `seconds`, `bytes_per_second`."""
    main, per = unit_parts(unit)
    return "_".join(w for w in (main, "per_" + per if per else "") if w)


def metric_name(name: str, unit: str = "", *, counter: bool = False, gauge: bool = False,
                namespace: str = "") -> str:
    """The Prometheus name of an OTLP metric (`_total` included for a counter)."""
    words = _words(name)
    main, per = unit_parts(unit)
    if main and main not in words:
        words.append(main)
    if per and per not in words:
        words += ["per", per]
    if counter:
        words = [w for w in words if w != "total"] + ["total"]
    if gauge and unit == "1":
        words = [w for w in words if w != "ratio"] + ["ratio"]
    if namespace:
        words.insert(0, namespace)
    joined = "_".join(words)
    return "_" + joined if joined[:1].isdigit() else joined


def label_name(key: str) -> str:
    name = _NOT_LABEL.sub("_", key)
    if name[:1].isdigit():
        return "key_" + name
    if name.startswith("_") and not name.startswith("__"):
        return "key" + name
    return name


def label_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bytes):
        return value.hex()
    return "" if value is None else str(value)


@dataclass
class ResourceToTelemetryConfig:
    enabled: bool = field(default=False, metadata=doc(
        "Put every resource attribute on every series (instead of only on target_info)."))


@dataclass
class Config:
    endpoint: str = field(default="localhost:9464", metadata=doc(
        "host:port the scrape endpoint listens on; metrics are at /metrics."))
    namespace: str = field(default="", metadata=doc("Prefix of every metric name (`ns` → `ns_gen_ai_…`)."))
    const_labels: dict[str, str] = field(default_factory=dict, metadata=doc("Labels added to every series."))
    metric_expiration: Duration = field(default=Duration(300), metadata=doc(
        "A series not updated for this long is no longer served; 0 keeps series forever."))
    resource_to_telemetry_conversion: ResourceToTelemetryConfig = field(
        default_factory=ResourceToTelemetryConfig, metadata=doc("Resource attributes as labels."))
    enable_open_metrics: bool = field(default=False, metadata=doc(
        "Answer in OpenMetrics when the scraper's Accept header asks for it."))

    def validate(self) -> list[str]:
        errors = []
        try:
            split_endpoint(self.endpoint)
        except ValueError:
            errors.append(f"endpoint: must be host:port; got {self.endpoint!r}")
        if self.namespace and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.namespace):
            errors.append(f"namespace: must be letters, digits and _ (not starting with a digit); "
                          f"got {self.namespace!r}")
        errors += [f"const_labels.{key}: not a valid label name (letters, digits and _, not starting with a digit "
                   f"or __)" for key in self.const_labels
                   if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or key.startswith("__")]
        return errors


# --- the series held for scraping ------------------------------------------------------------------

class Series:
    __slots__ = ("labels", "value", "bounds", "counts", "sum", "count", "quantiles", "time_ns", "updated")

    def __init__(self, labels: dict[str, str]):
        self.labels = labels
        self.value = 0.0
        self.bounds: list[float] = []
        self.counts: list[int] = []
        self.sum = 0.0
        self.count = 0
        self.quantiles: list[tuple[float, float]] = []
        self.time_ns = 0
        self.updated = 0.0


class Family:
    __slots__ = ("name", "type", "help", "unit", "series")

    def __init__(self, name: str, type_: str, help_: str, unit: str):
        self.name, self.type, self.help, self.unit = name, type_, help_, unit
        self.series: dict[tuple, Series] = {}


def _number(point) -> float:
    return point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)


class MetricStore:
    """OTLP metrics in, Prometheus metric families out (a prometheus_client Collector).

    Sans-IO: `clock` (monotonic seconds) decides expiration; nothing here does I/O."""

    def __init__(self, config: Config, clock=time.monotonic, on_conflict=lambda name, why: None):
        self.config = config
        self.clock = clock
        self.on_conflict = on_conflict
        self.families: dict[str, Family] = {}
        self._const = dict(config.const_labels)

    # -- in

    def add(self, request: Message) -> tuple[int, dict[str, int]]:
        """Take every point of a metrics request; return (points taken, points dropped by reason)."""
        now = self.clock()
        taken, dropped = 0, {}
        for rm in request.resource_metrics:
            resource = as_dict(rm.resource.attributes)
            identity = self._identity(resource)
            self._target_info(resource, identity, now)
            converted = (self._attribute_labels(rm.resource.attributes)
                         if self.config.resource_to_telemetry_conversion.enabled else {})
            for sm in rm.scope_metrics:
                scope = {k: v for k, v in (("otel_scope_name", sm.scope.name),
                                           ("otel_scope_version", sm.scope.version)) if v}
                for metric in sm.metrics:
                    n, reason = self._add_metric(metric, converted, {**identity, **scope, **self._const}, now)
                    if reason:
                        dropped[reason] = dropped.get(reason, 0) + n
                    else:
                        taken += n
        return taken, dropped

    @staticmethod
    def _identity(resource: dict) -> dict[str, str]:
        labels = {}
        name, namespace = resource.get("service.name"), resource.get("service.namespace")
        if name is not None:
            labels["job"] = f"{label_value(namespace)}/{label_value(name)}" if namespace else label_value(name)
        if resource.get("service.instance.id") is not None:
            labels["instance"] = label_value(resource["service.instance.id"])
        return labels

    def _target_info(self, resource: dict, identity: dict, now: float) -> None:
        rest = {label_name(k): label_value(v) for k, v in resource.items() if k not in RESOURCE_IDENTITY}
        if not rest:
            return
        family = self._family("target_info", "gauge", "Target metadata", "")
        series = self._series(family, {**rest, **identity, **self._const})
        series.value, series.updated = 1.0, now

    @staticmethod
    def _attribute_labels(attrs) -> dict[str, str]:
        labels: dict[str, str] = {}
        for kv in attrs:
            name, value = label_name(kv.key), label_value(to_python(kv.value))
            if not name:
                continue
            labels[name] = f"{labels[name]};{value}" if name in labels else value
        return labels

    def _family(self, name: str, type_: str, help_: str, unit: str) -> Family | None:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = Family(name, type_, help_, unit)
        elif family.type != type_:
            self.on_conflict(name, f"already served as a {family.type}, not a {type_}")
            return None
        return family

    @staticmethod
    def _series(family: Family, labels: dict[str, str]) -> Series:
        key = tuple(sorted(labels.items()))
        series = family.series.get(key)
        if series is None:
            series = family.series[key] = Series(labels)
        return series

    def _add_metric(self, metric, resource_labels: dict, fixed: dict, now: float) -> tuple[int, str | None]:
        kind = metric.WhichOneof("data")
        if kind is None:
            return 0, None
        body = getattr(metric, kind)
        points = body.data_points
        delta = getattr(body, "aggregation_temporality", 0) == AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
        if kind == "exponential_histogram":
            return len(points), "exponential_histogram"
        if kind == "sum":
            if body.is_monotonic:
                type_ = "counter"
            elif delta:
                return len(points), "non_monotonic_delta_sum"
            else:
                type_ = "gauge"
        else:
            type_ = {"gauge": "gauge", "histogram": "histogram", "summary": "summary"}[kind]
        name = metric_name(metric.name, metric.unit, counter=type_ == "counter",
                           gauge=type_ == "gauge", namespace=self.config.namespace)
        if not name:
            return len(points), "invalid_name"
        base = name.removesuffix("_total") if type_ == "counter" else name
        suffix = unit_suffix(metric.unit)
        family = self._family(base, type_, metric.description, suffix if suffix and base.endswith("_" + suffix)
                              else "")
        if family is None:
            return len(points), "name_conflict"
        for point in points:
            labels = {**resource_labels, **self._attribute_labels(point.attributes), **fixed}
            if point.flags & DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK:
                family.series.pop(tuple(sorted(labels.items())), None)  # the source says: this series ended
                continue
            series = self._series(family, labels)
            if not delta and point.time_unix_nano < series.time_ns:
                continue  # older than what is held
            self._update(series, kind, point, delta and series.updated > 0)
            series.time_ns, series.updated = max(series.time_ns, point.time_unix_nano), now
        return len(points), None

    @staticmethod
    def _update(series: Series, kind: str, point, accumulate: bool) -> None:
        if kind in ("sum", "gauge"):
            series.value = series.value + _number(point) if accumulate and kind == "sum" else _number(point)
        elif kind == "histogram":
            bounds, counts = list(point.explicit_bounds), list(point.bucket_counts)
            if len(counts) != len(bounds) + 1:  # no buckets (or malformed ones): only +Inf is known
                bounds, counts = [], [point.count]
            if accumulate and bounds == series.bounds and len(counts) == len(series.counts):
                series.counts = [a + b for a, b in zip(series.counts, counts)]
                series.sum += point.sum
                series.count += point.count
            else:
                series.bounds, series.counts, series.sum, series.count = bounds, counts, point.sum, point.count
        else:  # summary
            series.quantiles = [(q.quantile, q.value) for q in point.quantile_values]
            series.sum, series.count = point.sum, point.count

    # -- out

    def collect(self) -> Iterator[Metric]:
        ttl = self.config.metric_expiration
        now = self.clock()
        for name, family in list(self.families.items()):
            if ttl:
                for key in [k for k, s in family.series.items() if now - s.updated > ttl]:
                    del family.series[key]
            if not family.series:
                del self.families[name]
                continue
            yield self._render(family)

    @staticmethod
    def _render(family: Family) -> Metric:
        metric = Metric(family.name, family.help, family.type, family.unit)
        name = family.name
        for s in family.series.values():
            if family.type == "counter":
                metric.add_sample(name + "_total", s.labels, s.value)
            elif family.type == "gauge":
                metric.add_sample(name, s.labels, s.value)
            elif family.type == "histogram":
                cumulative = 0
                for bound, count in zip([*s.bounds, math.inf], s.counts):
                    cumulative += count
                    metric.add_sample(name + "_bucket", {**s.labels, "le": floatToGoString(bound)}, cumulative)
                metric.add_sample(name + "_sum", s.labels, s.sum)
                metric.add_sample(name + "_count", s.labels, s.count)
            else:
                for quantile, value in s.quantiles:
                    metric.add_sample(name, {**s.labels, "quantile": floatToGoString(quantile)}, value)
                metric.add_sample(name + "_sum", s.labels, s.sum)
                metric.add_sample(name + "_count", s.labels, s.count)
        return metric


# --- the exporter ----------------------------------------------------------------------------------

class PrometheusExporter(Exporter):
    def __init__(self, settings: Settings, config: Config):
        super().__init__(settings, config)
        self._label = str(self.id)
        self._telemetry = settings.telemetry
        self._conflicts: set[str] = set()
        self.store = MetricStore(config, on_conflict=self._conflict)
        self.port: int | None = None  # the bound port (port 0 in the endpoint gets an ephemeral one)
        self._runner: web.AppRunner | None = None

    def _conflict(self, name: str, why: str) -> None:
        if name not in self._conflicts:
            self._conflicts.add(name)
            self.logger.warning("metric %s dropped: %s", name, why, extra={"fields": {"exporter": self._label}})

    async def start(self, host: Host) -> None:
        host_name, port = split_endpoint(self.config.endpoint)
        try:
            family = socket.getaddrinfo(host_name, port, type=socket.SOCK_STREAM)[0][0]
            sock = socket.create_server((host_name, port), family=family, reuse_port=False)
        except OSError as e:
            raise PrometheusExporterError(f"cannot listen on {self.config.endpoint}: {e.strerror or e}") from e
        self.port = sock.getsockname()[1]
        app = web.Application()
        app.router.add_get("/metrics", self._scrape)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        self.logger.info("prometheus scrape endpoint serving", extra={"fields": {
            "endpoint": f"http://{host_name}:{self.port}/metrics"}})

    async def consume(self, signal: Signal, data: Message) -> None:
        taken, dropped = self.store.add(data)
        self._telemetry.count("exporter", "sent", Signal.METRICS, taken, exporter=self._label)
        for reason, n in dropped.items():
            self._telemetry.count("exporter", "dropped", Signal.METRICS, n, exporter=self._label, reason=reason)
            self.logger.debug("dropped %d points: %s", n, reason)

    async def _scrape(self, request: web.Request) -> web.Response:
        if self.config.enable_open_metrics:
            encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        else:
            encode, content_type = generate_latest, CONTENT_TYPE_PLAIN_0_0_4
        response = web.Response(body=encode(self.store), headers={"Content-Type": content_type})
        response.enable_compression()  # gzip when the scraper accepts it (Prometheus does)
        return response

    async def shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class PrometheusExporterError(Exception):
    pass


factory = Factory(
    type="prometheus",
    kind=Kind.EXPORTER,
    config_class=Config,
    create=PrometheusExporter,
    signals=frozenset({Signal.METRICS}),
    stability=Stability.ALPHA,
    description="Serves the metrics it receives on a Prometheus scrape endpoint, named the Prometheus way",
)
