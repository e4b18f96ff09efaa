"""The batch processor: batches by size and by time, caps request size, buffers
with back-pressure, logs downstream failures, and loses nothing on shutdown."""

import asyncio
import logging
import sys

import pytest

from conftest import CapturingConsumer
from llmtap.component import Signal
from llmtap.configtypes import decode_config
from llmtap.pdata import count_items
from llmtap.processors.batch import Config, factory
from otlpdata import logs_request, metrics_request, spans_request

TRACES = Signal.TRACES


def span_ids(requests) -> list[bytes]:
    return [s.span_id for r in requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


@pytest.fixture
async def make_batch(make_settings, host):
    made = []

    async def make(next, signal=TRACES, **config):
        processor = factory.create(make_settings("processor", "batch"), Config(**config), signal, next)
        await processor.start(host)
        made.append(processor)
        return processor

    yield make
    for processor in made:
        await processor.shutdown()


async def test_defaults_are_the_collectors():
    assert Config() == Config(send_batch_size=8192, send_batch_max_size=0, timeout=0.2)
    config, errors = decode_config(Config, {"send_batch_size": 100, "send_batch_max_size": 200, "timeout": "2s"})
    assert errors == [] and config.timeout == 2.0


async def test_a_max_size_below_the_batch_size_is_a_config_error_naming_the_key():
    _, errors = decode_config(Config, {"send_batch_size": 1000, "send_batch_max_size": 500})
    assert errors == ["send_batch_max_size: must be 0 (no limit) or >= send_batch_size (1000); got 500"]
    _, errors = decode_config(Config, {"send_batch_size": -1})
    assert errors[0].startswith("send_batch_size: must not be negative")


async def test_reaching_send_batch_size_sends_one_merged_batch(make_batch, capture):
    batch = await make_batch(capture, send_batch_size=10, timeout=3600)
    inputs = [spans_request(4, seed=i) for i in range(3)]
    expected_ids = span_ids(inputs)
    for request in inputs:
        await batch.consume(TRACES, request)
    await capture.wait_for_items(12)

    [(signal, sent)] = capture.received
    assert signal is TRACES
    assert count_items(TRACES, sent) == 12
    assert len(sent.resource_spans) == 3  # every resource kept with its own spans
    assert span_ids([sent]) == expected_ids
    telemetry = batch.settings.telemetry
    assert telemetry.value("llmtap_processor_batch_batch_size_trigger_send_total", processor="batch") == 1
    assert telemetry.value("llmtap_processor_batch_batch_send_size_items_total", processor="batch") == 12


async def test_a_partial_batch_is_sent_when_the_timeout_expires(make_batch, capture):
    batch = await make_batch(capture, send_batch_size=1000, timeout=0.05)
    await batch.consume(TRACES, spans_request(5))
    assert capture.received == []  # consume returns once the data is buffered
    await capture.wait_for_items(5)
    assert len(capture.received) == 1
    telemetry = batch.settings.telemetry
    assert telemetry.value("llmtap_processor_batch_timeout_trigger_send_total", processor="batch") == 1
    assert telemetry.value("llmtap_processor_batch_batch_size_trigger_send_total", processor="batch") == 0


async def test_batches_bigger_than_the_max_size_are_split_and_the_remainder_waits(make_batch, capture):
    batch = await make_batch(capture, send_batch_size=10, send_batch_max_size=10, timeout=3600)
    request = spans_request(25)
    expected_ids = span_ids([request])
    await batch.consume(TRACES, request)
    await capture.wait_for_items(20)
    assert [count_items(TRACES, r) for r in capture.requests()] == [10, 10]

    await batch.shutdown()  # the 5 left over go out on shutdown
    sizes = [count_items(TRACES, r) for r in capture.requests()]
    assert sizes == [10, 10, 5]
    assert span_ids(capture.requests()) == expected_ids
    for sent in capture.requests():  # every piece keeps its resource and scope
        assert sent.resource_spans[0].resource == request.resource_spans[0].resource
        assert sent.resource_spans[0].scope_spans[0].scope.name == "llmtap.tests"


async def test_timeout_zero_sends_every_request_at_once_split_by_the_max_size(make_batch, capture):
    batch = await make_batch(capture, send_batch_size=2, send_batch_max_size=2, timeout=0)
    await batch.consume(TRACES, spans_request(1))
    await capture.wait_for_items(1)
    await batch.consume(TRACES, spans_request(3, seed=2))
    await capture.wait_for_items(4)
    assert [count_items(TRACES, r) for r in capture.requests()] == [1, 2, 1]


async def test_shutdown_flushes_everything_buffered_and_counts_it(make_batch, capture):
    batch = await make_batch(capture, send_batch_size=8192, timeout=3600)
    for i in range(5):
        await batch.consume(TRACES, spans_request(7, seed=i))
    assert capture.received == []
    await batch.shutdown()
    assert capture.items() == 35
    telemetry = batch.settings.telemetry
    assert telemetry.value("llmtap_processor_incoming_spans_total", processor="batch") == 35
    assert telemetry.value("llmtap_processor_outgoing_spans_total", processor="batch") == 35


async def test_data_arriving_after_shutdown_goes_straight_on(make_batch, capture):
    batch = await make_batch(capture, timeout=3600)
    await batch.shutdown()
    await batch.consume(TRACES, spans_request(2))
    assert capture.items() == 2


async def test_metrics_are_batched_by_data_point_without_splitting_a_metric(make_batch, capture):
    batch = await make_batch(capture, signal=Signal.METRICS, send_batch_size=10, send_batch_max_size=10,
                             timeout=3600)
    await batch.consume(Signal.METRICS, metrics_request(points=4))  # 3 metrics × 4 points
    await batch.shutdown()
    sizes = [count_items(Signal.METRICS, r) for r in capture.requests()]
    assert sum(sizes) == 12 and max(sizes) <= 10
    names = [m.name for r in capture.requests() for rm in r.resource_metrics for sm in rm.scope_metrics
             for m in sm.metrics]
    assert sorted(names) == sorted(m.name for m in metrics_request(points=4).resource_metrics[0]
                                   .scope_metrics[0].metrics)


async def test_logs_pass_through_unchanged(make_batch, capture):
    batch = await make_batch(capture, signal=Signal.LOGS, timeout=3600)
    request = logs_request(6)
    expected = request.SerializeToString()
    await batch.consume(Signal.LOGS, request)
    await batch.shutdown()
    [(_, sent)] = capture.received
    assert sent.SerializeToString() == expected


async def test_a_failing_next_consumer_is_logged_and_later_batches_still_flow(make_batch, caplog):
    failing = CapturingConsumer(fail_with=RuntimeError("exporter exploded"))
    batch = await make_batch(failing, send_batch_size=5, timeout=3600)
    with caplog.at_level(logging.ERROR):
        await batch.consume(TRACES, spans_request(5))  # does not raise: the send is asynchronous
        for _ in range(100):
            if failing.calls:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0)
    assert failing.calls == 1
    [record] = [r for r in caplog.records if "cannot pass a batch on" in r.getMessage()]
    assert "exporter exploded" in record.getMessage()
    assert record.fields["items"] == 5

    failing.fail_with = None
    await batch.consume(TRACES, spans_request(5, seed=2))
    await failing.wait_for_items(5)


async def test_a_slow_consumer_pushes_back_instead_of_growing_the_buffer(make_batch):
    gate = asyncio.Event()
    slow = CapturingConsumer(gate=gate)
    batch = await make_batch(slow, send_batch_size=10, timeout=3600)

    await batch.consume(TRACES, spans_request(10, seed=1))  # goes to the sender, held at the gate
    for _ in range(100):
        if slow.calls:
            break
        await asyncio.sleep(0.01)
    await batch.consume(TRACES, spans_request(10, seed=2))  # fills the buffer
    third = asyncio.create_task(batch.consume(TRACES, spans_request(10, seed=3)))
    await asyncio.sleep(0.05)
    assert not third.done()  # waits for room rather than buffering without bound

    gate.set()
    await asyncio.wait_for(third, 5)
    await slow.wait_for_items(30)
    assert span_ids(slow.requests()) == span_ids([spans_request(10, seed=s) for s in (1, 2, 3)])


async def test_a_request_merged_into_the_pending_batch_is_not_kept_alive(make_batch, capture):
    # Merged on arrival: the batch holds its data once, not once merged plus every request.
    batch = await make_batch(capture, send_batch_size=1000, timeout=3600)
    await batch.consume(TRACES, spans_request(5, seed=1))
    second = spans_request(5, seed=2)
    references_of_its_own = sys.getrefcount(second)
    await batch.consume(TRACES, second)
    assert sys.getrefcount(second) == references_of_its_own

    await batch.shutdown()
    assert span_ids(capture.requests()) == span_ids([spans_request(5, seed=1), second])
