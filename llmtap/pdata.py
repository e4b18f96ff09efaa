"""OTLP export requests as the unit of data: their types, item counts, batching,
and the OTLP/JSON encoding (hex trace and span IDs, as the OTLP spec requires).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Iterator

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from llmtap.component import PermanentError, Signal

REQUEST_TYPES: dict[Signal, type[Message]] = {
    Signal.TRACES: ExportTraceServiceRequest,
    Signal.METRICS: ExportMetricsServiceRequest,
    Signal.LOGS: ExportLogsServiceRequest,
}

# Per signal: the resource-level field, the scope-level field, the item field.
_LAYOUT = {
    Signal.TRACES: ("resource_spans", "scope_spans", "spans"),
    Signal.METRICS: ("resource_metrics", "scope_metrics", "metrics"),
    Signal.LOGS: ("resource_logs", "scope_logs", "log_records"),
}

# What the collector's self-metrics call one item of each signal.
ITEM_NAMES = {Signal.TRACES: "spans", Signal.METRICS: "metric_points", Signal.LOGS: "log_records"}

# OTLP/JSON: these bytes fields are hex strings, every other bytes field is base64.
_HEX_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})


def new_request(signal: Signal) -> Message:
    return REQUEST_TYPES[signal]()


def _data_points(metric) -> int:
    kind = metric.WhichOneof("data")
    return len(getattr(metric, kind).data_points) if kind else 0


def count_items(signal: Signal, data: Message) -> int:
    """Spans, metric data points, or log records in a request."""
    res_field, scope_field, item_field = _LAYOUT[signal]
    total = 0
    for rs in getattr(data, res_field):
        for ss in getattr(rs, scope_field):
            items = getattr(ss, item_field)
            total += sum(_data_points(m) for m in items) if signal is Signal.METRICS else len(items)
    return total


def _item_weight(signal: Signal, item) -> int:
    return _data_points(item) if signal is Signal.METRICS else 1


def split(signal: Signal, data: Message, max_items: int) -> Iterator[Message]:
    """Yield requests of at most `max_items` items each (a metric's data points are
    never split across requests), keeping resource and scope of every item.

    Cost: one copy of every item; resources and scopes are copied once per request
    they appear in.
    """
    res_field, scope_field, item_field = _LAYOUT[signal]
    out = new_request(signal)
    n = 0
    for rs in getattr(data, res_field):
        out_rs = None
        for ss in getattr(rs, scope_field):
            out_ss = None
            for item in getattr(ss, item_field):
                weight = _item_weight(signal, item)
                if n and n + weight > max_items:
                    yield out
                    out, n, out_rs, out_ss = new_request(signal), 0, None, None
                if out_rs is None:
                    out_rs = getattr(out, res_field).add()
                    out_rs.resource.CopyFrom(rs.resource)
                    out_rs.schema_url = rs.schema_url
                if out_ss is None:
                    out_ss = getattr(out_rs, scope_field).add()
                    out_ss.scope.CopyFrom(ss.scope)
                    out_ss.schema_url = ss.schema_url
                getattr(out_ss, item_field).add().CopyFrom(item)
                n += weight
    if n:
        yield out


def merge_into(signal: Signal, target: Message, data: Message) -> None:
    """Append every resource of `data` to `target` (no deduplication of resources).

    Cost: one deep copy of `data`. CopyFrom into a fresh element, not extend():
    upb implements extend/MergeFrom as serialize + parse, about three times slower.
    """
    target_resources = getattr(target, _LAYOUT[signal][0])
    for resource in getattr(data, _LAYOUT[signal][0]):
        target_resources.add().CopyFrom(resource)


def parse_protobuf(signal: Signal, body: bytes) -> Message:
    msg = new_request(signal)
    try:
        msg.ParseFromString(body)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise PermanentError(f"cannot decode OTLP protobuf {signal} request: {e}") from None
    return msg


def _map_ids(node: Any, convert) -> Any:
    if isinstance(node, dict):
        return {k: (convert(v) if k in _HEX_ID_KEYS and isinstance(v, str) else _map_ids(v, convert))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_map_ids(v, convert) for v in node]
    return node


def _hex_to_b64(value: str) -> str:
    try:
        return base64.b64encode(bytes.fromhex(value)).decode()
    except ValueError:
        raise PermanentError(f"invalid hex ID {value[:64]!r} in OTLP/JSON") from None


def _b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def parse_json(signal: Signal, body: bytes | str) -> Message:
    """OTLP/JSON → protobuf. Unknown fields are ignored, as the spec requires."""
    try:
        tree = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise PermanentError(f"cannot decode OTLP/JSON {signal} request: {e}") from None
    if not isinstance(tree, dict):
        raise PermanentError(f"OTLP/JSON {signal} request must be a JSON object")
    msg = new_request(signal)
    try:
        json_format.ParseDict(_map_ids(tree, _hex_to_b64), msg, ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise PermanentError(f"invalid OTLP/JSON {signal} request: {e}") from None
    return msg


def to_json_dict(data: Message) -> dict:
    """Protobuf → OTLP/JSON object: lowerCamelCase names, enums as integers,
    64-bit integers as strings, hex IDs — what the collector's pdata writes."""
    tree = json_format.MessageToDict(data, use_integers_for_enums=True)
    return _map_ids(tree, _b64_to_hex)


def to_json(data: Message) -> str:
    return json.dumps(to_json_dict(data), separators=(",", ":"), ensure_ascii=False)
