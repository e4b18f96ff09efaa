"""The Service built from YAML: one receiver feeding several pipelines, fan-out to
every exporter, a third-party processor from an installed plugin package, the
start and stop order, and the drain on shutdown."""

import asyncio
from dataclasses import dataclass

import pytest

from llmtap.component import (Component, EmptyConfig, Exporter, Factory, Kind, Processor, Signal,
                              Stability)
from llmtap.service import StartError
from otlpdata import logs_request, spans_request


def span_attributes(request) -> list[dict]:
    return [{kv.key: kv.value.string_value for kv in span.attributes}
            for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]


async def test_one_receiver_feeds_every_pipeline_and_each_gets_its_own_copy(service_from_yaml, capture_exporters,
                                                                            feed_receivers):
    # add_attribute comes from the example plugin package (tests/plugins), found
    # through the `llmtap.components` entry-point group, not by import here.
    service = service_from_yaml("""
receivers: {feed: {}}
processors:
  add_attribute: {key: pipeline, value: marked}
exporters: {capture/marked: {}, capture/plain: {}, capture/also_plain: {}}
service:
  pipelines:
    traces/marked: {receivers: [feed], processors: [add_attribute], exporters: [capture/marked]}
    traces/plain: {receivers: [feed], exporters: [capture/plain, capture/also_plain]}
""")
    await service.start()
    sent = spans_request(7)
    await feed_receivers["feed"].consumers[Signal.TRACES].consume(Signal.TRACES, spans_request(7))
    await service.shutdown()

    [marked] = capture_exporters["capture/marked"].sink.requests()
    assert all(attrs["pipeline"] == "marked" for attrs in span_attributes(marked))
    for plain in ("capture/plain", "capture/also_plain"):
        # The other pipeline's processor must not have touched this pipeline's data.
        assert capture_exporters[plain].sink.requests() == [sent]


async def test_a_receiver_gets_a_consumer_only_for_the_signals_it_has_pipelines_for(service_from_yaml,
                                                                                    feed_receivers):
    service = service_from_yaml("""
receivers: {feed: {}}
exporters: {capture: {}}
service:
  pipelines:
    logs: {receivers: [feed], exporters: [capture]}
""")
    assert set(feed_receivers["feed"].consumers) == {Signal.LOGS}
    assert service.receivers


async def test_a_slow_exporter_does_not_hold_up_its_neighbours_data(service_from_yaml, capture_exporters,
                                                                    feed_receivers):
    # Behind a queue (exporterhelper) the slow exporter only enqueues; here the
    # capture exporter has no queue, so the fan-out itself must run them side by side.
    service = service_from_yaml("""
receivers: {feed: {}}
exporters: {capture/slow: {delay: 1s}, capture/fast: {}}
service:
  pipelines:
    logs: {receivers: [feed], exporters: [capture/slow, capture/fast]}
""")
    await service.start()
    pushed = asyncio.ensure_future(feed_receivers["feed"].consumers[Signal.LOGS].consume(Signal.LOGS,
                                                                                         logs_request(3)))
    await capture_exporters["capture/fast"].sink.wait_for_items(3, timeout=0.9)
    assert capture_exporters["capture/slow"].sink.items() == 0
    await pushed
    await service.shutdown()
    assert capture_exporters["capture/slow"].sink.items() == 3


events: list[str] = []


class Recorder(Component):
    async def start(self, host) -> None:
        events.append(f"start {self.id}")

    async def shutdown(self) -> None:
        events.append(f"stop {self.id}")


class RecordingProcessor(Recorder, Processor):
    async def consume(self, signal, data):
        await self.next.consume(signal, data)


@dataclass
class FailConfig:
    fail: bool = False


class RecordingExporter(Recorder, Exporter):
    async def start(self, host) -> None:
        await super().start(host)
        if self.config.fail:
            raise OSError("target refused")

    async def consume(self, signal, data):
        pass


def recording(kind: Kind, cls, config_class=EmptyConfig) -> Factory:
    return Factory(type=f"rec{kind}", kind=kind, config_class=config_class, create=cls, signals=frozenset(Signal),
                   stability=Stability.DEVELOPMENT, description="records start/stop")


ORDERED = """
receivers: {feed: {}}
processors: {recprocessor/first: {}, recprocessor/second: {}}
exporters: {recexporter/ok: {}, recexporter/other: {fail: %s}}
service:
  pipelines:
    traces:
      receivers: [feed]
      processors: [recprocessor/first, recprocessor/second]
      exporters: [recexporter/ok, recexporter/other]
"""


async def test_start_goes_downstream_first_and_stop_goes_with_the_data(service_from_yaml):
    events.clear()
    service = service_from_yaml(ORDERED % "false", recording(Kind.PROCESSOR, RecordingProcessor),
                                recording(Kind.EXPORTER, RecordingExporter, FailConfig))
    await service.start()
    await service.shutdown()
    assert events == ["start recexporter/ok", "start recexporter/other", "start recprocessor/second",
                      "start recprocessor/first", "stop recprocessor/first", "stop recprocessor/second",
                      "stop recexporter/ok", "stop recexporter/other"]


async def test_a_component_failing_to_start_stops_what_already_started_and_names_itself(service_from_yaml):
    events.clear()
    service = service_from_yaml(ORDERED % "true", recording(Kind.PROCESSOR, RecordingProcessor),
                                recording(Kind.EXPORTER, RecordingExporter, FailConfig))
    with pytest.raises(StartError, match="cannot start exporter recexporter/other: target refused"):
        await service.start()
    assert events == ["start recexporter/ok", "start recexporter/other", "stop recexporter/ok"]


async def test_shutdown_drains_batches_through_connectors_into_the_exporters(service_from_yaml, capture_exporters,
                                                                             feed_receivers):
    # Data sits in two batch processors, one before and one after a connector.
    # Stopping in data-flow order flushes the first into the second, and the
    # second into the exporter; nothing is left behind.
    service = service_from_yaml("""
receivers: {feed: {}}
processors: {batch/in: {timeout: 1h}, batch/out: {timeout: 1h}}
connectors: {forward: {}}
exporters: {capture: {}}
service:
  pipelines:
    traces/out: {receivers: [forward], processors: [batch/out], exporters: [capture]}
    traces/in: {receivers: [feed], processors: [batch/in], exporters: [forward]}
""")
    await service.start()
    feed = feed_receivers["feed"]
    for seed in range(4):
        await feed.consumers[Signal.TRACES].consume(Signal.TRACES, spans_request(5, seed=seed))
    assert capture_exporters["capture"].sink.items() == 0
    await service.shutdown()
    assert capture_exporters["capture"].sink.items() == 20
    assert service.host.status == "stopping"
