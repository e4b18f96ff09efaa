"""The sending queue, retries and shutdown drain every network exporter is built on.

The exporter under test is a QueuedRetryExporter whose `send` plays a script of
outcomes (the real network exporters are tested against real servers in
test_exporter_otlp.py and test_exporter_otlphttp.py). What is checked is what
the helper promises: consume never waits on the destination, retries follow the
config and the server's requested wait, and every item ends up counted as sent
or as dropped with a reason.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from dataclasses import dataclass, field

import pytest

from conftest import ReadyHost, new_settings
from llmtap.component import PermanentError, RefusedError, Signal
from llmtap.configtypes import Duration, decode_config
from llmtap.exporterhelper import PartialSuccess, QueueConfig, QueuedRetryExporter, RetryConfig, SendError
from otlpdata import spans_request

HANG = "hang"
SPANS = 10


def fast_retries(**overrides) -> RetryConfig:
    settings = dict(initial_interval=Duration(0.01), max_interval=Duration(0.05), max_elapsed_time=Duration(5))
    return RetryConfig(**{**settings, **overrides})


@dataclass
class ScriptedConfig:
    timeout: Duration = Duration(5)
    sending_queue: QueueConfig = field(default_factory=QueueConfig)
    retry_on_failure: RetryConfig = field(default_factory=fast_retries)


class ScriptedExporter(QueuedRetryExporter):
    """Each attempt plays the next outcome: an exception to raise, a PartialSuccess
    to return, or HANG (never answer). When the script runs out, attempts succeed."""

    def __init__(self, config: ScriptedConfig, *outcomes):
        super().__init__(new_settings("exporter", "scripted"), config)
        self.outcomes = deque(outcomes)
        self.attempts: list[float] = []
        self.delivered: list = []
        self.closed = False
        self.progress = asyncio.Event()

    async def send(self, signal, data):
        self.attempts.append(asyncio.get_running_loop().time())
        self.progress.set()
        outcome = self.outcomes.popleft() if self.outcomes else None
        if outcome == HANG:
            await asyncio.Event().wait()
        if isinstance(outcome, BaseException):
            raise outcome
        self.delivered.append(data)
        return outcome

    async def close(self) -> None:
        self.closed = True

    def count(self, what: str, **labels) -> float:
        return self.settings.telemetry.value(f"llmtap_exporter_{what}_spans_total", exporter="scripted", **labels)

    async def wait_until(self, condition, timeout: float = 5.0) -> None:
        async def wait():
            while not condition():
                self.progress.clear()
                await self.progress.wait()
        await asyncio.wait_for(wait(), timeout)


async def started(config: ScriptedConfig, *outcomes, host: ReadyHost | None = None) -> ScriptedExporter:
    exporter = ScriptedExporter(config, *outcomes)
    await exporter.start(host or ReadyHost())
    return exporter


async def shut_down(exporter: ScriptedExporter, within: float = 5.0) -> None:
    exporter.host.shutdown_deadline = asyncio.get_running_loop().time() + within
    await exporter.shutdown()


async def wait_for_counts(exporter: ScriptedExporter, what: str, n: float, **labels) -> None:
    for _ in range(500):
        if exporter.count(what, **labels) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{what}{labels} stayed at {exporter.count(what, **labels)}, expected {n}")


async def test_retryable_failures_are_retried_until_the_data_is_delivered():
    exporter = await started(ScriptedConfig(), SendError("busy", retryable=True), ConnectionResetError("reset"))
    await exporter.consume(Signal.TRACES, spans_request(SPANS))
    await wait_for_counts(exporter, "sent", SPANS)

    assert len(exporter.attempts) == 3
    assert exporter.count("send_failed") == 0  # it was delivered in the end
    assert exporter.count("dropped", reason="retries_exhausted") == 0
    await shut_down(exporter)
    assert exporter.closed


async def test_a_permanent_error_drops_the_data_after_one_attempt():
    exporter = await started(ScriptedConfig(), SendError("HTTP 400: bad span", retryable=False))
    await exporter.consume(Signal.TRACES, spans_request(SPANS))
    await wait_for_counts(exporter, "dropped", SPANS, reason="permanent_error")

    assert len(exporter.attempts) == 1
    assert exporter.count("send_failed") == SPANS
    assert exporter.count("sent") == 0
    await shut_down(exporter)


async def test_retries_stop_when_the_next_wait_would_pass_max_elapsed_time():
    failures = [SendError("down", retryable=True)] * 1000
    config = ScriptedConfig(retry_on_failure=fast_retries(max_elapsed_time=Duration(0.2)))
    exporter = await started(config, *failures)
    await exporter.consume(Signal.TRACES, spans_request(SPANS))
    await wait_for_counts(exporter, "dropped", SPANS, reason="retries_exhausted")

    assert 2 < len(exporter.attempts) < 1000
    assert exporter.attempts[-1] - exporter.attempts[0] <= 0.2
    assert exporter.count("send_failed") == SPANS  # once per request, not once per attempt
    await shut_down(exporter)


def test_the_wait_grows_by_the_multiplier_up_to_max_interval_even_after_endless_retries():
    exporter = ScriptedExporter(ScriptedConfig(retry_on_failure=RetryConfig(randomization_factor=0)))
    assert [exporter._backoff(attempt) for attempt in range(4)] == [5, 7.5, 11.25, 16.875]
    assert exporter._backoff(5) == 30
    assert exporter._backoff(100_000) == 30  # max_elapsed_time 0 retries forever: no overflow


async def test_with_retry_disabled_a_failure_drops_the_data():
    exporter = await started(ScriptedConfig(retry_on_failure=RetryConfig(enabled=False)),
                             SendError("down", retryable=True))
    await exporter.consume(Signal.TRACES, spans_request(SPANS))
    await wait_for_counts(exporter, "dropped", SPANS, reason="retry_disabled")
    assert len(exporter.attempts) == 1
    await shut_down(exporter)


async def test_the_servers_requested_wait_is_longer_than_the_backoff_and_is_honoured():
    exporter = await started(ScriptedConfig(), SendError("HTTP 503", retryable=True, retry_after=0.3))
    await exporter.consume(Signal.TRACES, spans_request(SPANS))
    await wait_for_counts(exporter, "sent", SPANS)

    first, second = exporter.attempts
    assert second - first >= 0.3
    await shut_down(exporter)


async def test_an_attempt_that_outlives_the_timeout_is_abandoned_and_retried():
    exporter = await started(ScriptedConfig(timeout=Duration(0.1)), HANG)
    await exporter.consume(Signal.TRACES, spans_request(SPANS))
    await wait_for_counts(exporter, "sent", SPANS)
    assert len(exporter.attempts) == 2
    await shut_down(exporter)


async def test_a_bug_in_send_loses_only_that_request(caplog):
    config = ScriptedConfig(sending_queue=QueueConfig(num_consumers=1))
    exporter = await started(config, KeyError("oops"))
    await exporter.consume(Signal.TRACES, spans_request(SPANS))
    await exporter.consume(Signal.TRACES, spans_request(SPANS, seed=2))
    await wait_for_counts(exporter, "sent", SPANS)  # the single worker survived

    assert exporter.count("dropped", reason="exporter_error") == SPANS
    assert "exporter failed unexpectedly" in caplog.text
    await shut_down(exporter)


async def test_a_partial_success_is_not_retried_and_its_rejected_items_are_counted(caplog):
    caplog.set_level(logging.WARNING)
    exporter = await started(ScriptedConfig(), PartialSuccess(rejected=3, message="3 spans had no name"))
    await exporter.consume(Signal.TRACES, spans_request(SPANS))
    await wait_for_counts(exporter, "sent", SPANS - 3)

    assert len(exporter.attempts) == 1
    assert exporter.count("dropped", reason="rejected_by_destination") == 3
    assert "3 spans had no name" in caplog.text
    await shut_down(exporter)


async def test_a_full_queue_refuses_new_data_at_once_and_counts_it():
    config = ScriptedConfig(sending_queue=QueueConfig(num_consumers=1, queue_size=1))
    exporter = await started(config, HANG)
    await exporter.consume(Signal.TRACES, spans_request(SPANS))            # taken by the worker, hangs
    await exporter.wait_until(lambda: exporter.attempts)
    await exporter.consume(Signal.TRACES, spans_request(SPANS, seed=2))    # fills the queue
    await asyncio.wait_for(exporter.consume(Signal.TRACES, spans_request(SPANS, seed=3)), 1.0)

    assert exporter.count("enqueue_failed") == SPANS
    assert exporter.count("dropped", reason="queue_full") == SPANS
    await shut_down(exporter, within=0.1)


async def test_a_worker_lets_go_of_a_request_once_it_is_sent():
    # Otherwise each idle worker keeps its last batch: num_consumers batches held for nothing.
    exporter = await started(ScriptedConfig())
    data = spans_request(SPANS)
    references_of_its_own = sys.getrefcount(data)
    await exporter.consume(Signal.TRACES, data)
    await wait_for_counts(exporter, "sent", SPANS)
    exporter.delivered.clear()
    assert sys.getrefcount(data) == references_of_its_own
    await shut_down(exporter)


async def test_shutdown_drains_the_queue_before_closing():
    config = ScriptedConfig(sending_queue=QueueConfig(num_consumers=1))
    exporter = await started(config, *[SendError("busy", retryable=True)] * 3)
    for seed in range(5):
        await exporter.consume(Signal.TRACES, spans_request(SPANS, seed=seed))
    await shut_down(exporter, within=5.0)

    assert len(exporter.delivered) == 5
    assert exporter.count("sent") == 5 * SPANS
    assert exporter.closed


async def test_what_is_left_at_the_shutdown_deadline_is_dropped_with_reason_shutdown():
    config = ScriptedConfig(sending_queue=QueueConfig(num_consumers=1))
    exporter = await started(config, HANG)
    for seed in range(4):
        await exporter.consume(Signal.TRACES, spans_request(SPANS, seed=seed))
    await exporter.wait_until(lambda: exporter.attempts)
    await asyncio.wait_for(shut_down(exporter, within=0.2), 3.0)

    assert exporter.count("sent") == 0
    assert exporter.count("dropped", reason="shutdown") == 4 * SPANS
    assert exporter.count("send_failed") == SPANS  # only the request that was being sent had been tried
    assert exporter.closed

    await exporter.consume(Signal.TRACES, spans_request(SPANS))  # too late: counted, not kept
    assert exporter.count("dropped", reason="shutdown") == 5 * SPANS


async def test_without_a_queue_consume_sends_inline_and_reports_the_outcome():
    no_queue = QueueConfig(enabled=False)
    exporter = await started(ScriptedConfig(sending_queue=no_queue), SendError("busy", retryable=True))
    await exporter.consume(Signal.TRACES, spans_request(SPANS))
    assert exporter.count("sent") == SPANS and len(exporter.attempts) == 2

    exporter = await started(ScriptedConfig(sending_queue=no_queue), SendError("bad", retryable=False))
    with pytest.raises(PermanentError, match="bad"):
        await exporter.consume(Signal.TRACES, spans_request(SPANS))

    gives_up = ScriptedConfig(sending_queue=no_queue, retry_on_failure=RetryConfig(enabled=False))
    exporter = await started(gives_up, SendError("HTTP 503", retryable=True, retry_after=2.0))
    with pytest.raises(RefusedError) as refused:
        await exporter.consume(Signal.TRACES, spans_request(SPANS))
    assert refused.value.retry_after == 2.0


@pytest.mark.parametrize("raw, errors", [
    ({"retry_on_failure": {"multiplier": 0.5}}, ["retry_on_failure: multiplier: must be >= 1"]),
    ({"retry_on_failure": {"randomization_factor": 1}},
     ["retry_on_failure: randomization_factor: must be in [0, 1)"]),
    ({"retry_on_failure": {"initial_interval": "1m"}},
     ["retry_on_failure: initial_interval: must not be greater than max_interval"]),
    ({"retry_on_failure": {"initial_interval": 0, "max_interval": "0s"}},
     ["retry_on_failure: initial_interval: must be greater than 0",
      "retry_on_failure: max_interval: must be greater than 0"]),
    ({"retry_on_failure": {"enabled": False, "initial_interval": 0}}, []),
    ({"sending_queue": {"num_consumers": 0, "queue_size": 0}},
     ["sending_queue: num_consumers: must be at least 1", "sending_queue: queue_size: must be at least 1"]),
    ({"retry_on_failure": {"max_elapsed_time": "soon"}},
     ["retry_on_failure.max_elapsed_time: invalid duration 'soon' (expected e.g. 5s, 200ms, 1m30s)"]),
])
def test_queue_and_retry_settings_are_checked(raw, errors):
    assert decode_config(ScriptedConfig, raw)[1] == errors


def test_defaults_are_the_collectors():
    retry, queue = RetryConfig(), QueueConfig()
    assert (retry.enabled, retry.initial_interval, retry.multiplier, retry.randomization_factor,
            retry.max_interval, retry.max_elapsed_time) == (True, 5, 1.5, 0.5, 30, 300)
    assert (queue.enabled, queue.num_consumers, queue.queue_size) == (True, 10, 1000)
