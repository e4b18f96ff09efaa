"""The forward connector joins pipelines of one signal inside a real Service
built from YAML: what the first pipeline exports, the next ones receive."""

import pytest

from llmtap.component import PermanentError, RefusedError, Signal
from llmtap.connectors.forward import factory
from otlpdata import logs_request, spans_request

FAN_IN_OUT = """
receivers: {feed: {}}
processors:
  batch/out: {timeout: 1h}
connectors: {forward: {}}
exporters:
  capture/batched: {}
  capture/direct: {}
  capture/logs: {}
service:
  pipelines:
    traces/in: {receivers: [feed], exporters: [forward]}
    traces/out: {receivers: [forward], processors: [batch/out], exporters: [capture/batched]}
    traces/direct: {receivers: [forward], exporters: [capture/direct]}
    logs/in: {receivers: [feed], exporters: [forward]}
    logs/out: {receivers: [forward], exporters: [capture/logs]}
"""


async def test_data_flows_from_the_exporting_pipeline_to_every_receiving_one(service_from_yaml, capture_exporters,
                                                                             feed_receivers):
    service = service_from_yaml(FAN_IN_OUT)
    await service.start()
    feed = feed_receivers["feed"]
    sent = spans_request(5)
    await feed.consumers[Signal.TRACES].consume(Signal.TRACES, spans_request(5))
    await feed.consumers[Signal.LOGS].consume(Signal.LOGS, logs_request(3))

    direct = capture_exporters["capture/direct"].sink
    assert direct.requests(Signal.TRACES) == [sent]
    assert capture_exporters["capture/batched"].sink.received == []  # still in traces/out's batch
    assert capture_exporters["capture/logs"].sink.requests() == [logs_request(3)]

    await service.shutdown()  # the batch behind the connector is flushed on the way down
    batched = capture_exporters["capture/batched"].sink
    assert batched.requests(Signal.TRACES) == [sent]
    assert batched.requests()[0] is not direct.requests()[0]  # each pipeline gets its own copy


async def test_a_refusal_downstream_reaches_the_sender(service_from_yaml, feed_receivers, capture_exporters):
    service = service_from_yaml("""
        receivers: {feed: {}}
        processors:
          memory_limiter: {limit_mib: 1, check_interval: 1s}
        connectors: {forward: {}}
        exporters: {capture: {}}
        service:
          pipelines:
            traces/in: {receivers: [feed], exporters: [forward]}
            traces/out: {receivers: [forward], processors: [memory_limiter], exporters: [capture]}
    """)
    await service.start()
    try:
        with pytest.raises(RefusedError):
            await feed_receivers["feed"].consumers[Signal.TRACES].consume(Signal.TRACES, spans_request(2))
        assert capture_exporters["capture"].sink.received == []
    finally:
        await service.shutdown()


async def test_a_signal_with_no_pipeline_behind_the_connector_is_a_clear_error(make_settings):
    connector = factory.create(make_settings("connector", "forward"), factory.default_config(), {})
    with pytest.raises(PermanentError, match="connector forward feeds no traces pipeline"):
        await connector.consume(Signal.TRACES, spans_request(1))


async def test_forward_supports_each_signal_into_itself_only():
    assert factory.signals == {(s, s) for s in Signal}
