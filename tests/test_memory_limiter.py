"""The memory limiter: limits from the config (or total memory), retryable
refusals above the soft limit, acceptance again once memory falls, a forced GC
above the hard limit — driven by real process memory, not a fake reading."""

import asyncio
import gc
import logging
import time

import psutil
import pytest

from conftest import CapturingConsumer
from llmtap.component import RefusedError, Signal
from llmtap.configtypes import decode_config
from llmtap.processors import batch as batch_module
from llmtap.processors.memory_limiter import MIB, Config, cgroup_memory_limit, factory, limits, total_memory
from otlpdata import spans_request

TRACES = Signal.TRACES


def rss_mib() -> int:
    return psutil.Process().memory_info().rss // MIB


@pytest.fixture
async def make_limiter(make_settings, host):
    made = []

    async def make(next, **config):
        limiter = factory.create(make_settings("processor", "memory_limiter"), Config(**config), TRACES, next)
        await limiter.start(host)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.shutdown()


async def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.01)


# --- config -------------------------------------------------------------------

@pytest.mark.parametrize("raw, error", [
    ({"check_interval": "0s", "limit_mib": 100}, "check_interval: must be greater than 0"),
    ({}, "limit_mib: one of limit_mib or limit_percentage must be set (greater than 0)"),
    ({"limit_mib": 100, "limit_percentage": 50}, "limit_mib: set either limit_mib or limit_percentage, not both"),
    ({"limit_mib": 100, "spike_limit_mib": 100}, "spike_limit_mib: must be less than limit_mib (100); got 100"),
    ({"limit_percentage": 50, "spike_limit_percentage": 60},
     "spike_limit_percentage: must be less than limit_percentage (50); got 60"),
    ({"limit_percentage": 120}, "limit_percentage: must be at most 100; got 120"),
    ({"limit_mib": 100, "spike_limit_percentage": 10},
     "spike_limit_percentage: only applies with limit_percentage; use spike_limit_mib with limit_mib"),
    ({"limit_mib": -5}, "limit_mib: must not be negative; got -5"),
])
async def test_bad_configs_are_rejected_naming_the_key(raw, error):
    _, errors = decode_config(Config, raw)
    assert error in errors


async def test_the_default_config_shape_is_valid():
    config, errors = decode_config(Config, {"check_interval": "1s", "limit_percentage": 80,
                                            "spike_limit_percentage": 20})
    assert errors == []
    assert Config().check_interval == 1.0


async def test_soft_limit_is_the_hard_limit_minus_the_spike_which_defaults_to_a_fifth():
    assert limits(Config(limit_mib=100), total=0) == (100 * MIB, 80 * MIB)
    assert limits(Config(limit_mib=100, spike_limit_mib=30), total=0) == (100 * MIB, 70 * MIB)
    total = 1000 * MIB
    assert limits(Config(limit_percentage=50, spike_limit_percentage=10), total) == (500 * MIB, 400 * MIB)
    assert limits(Config(limit_percentage=50), total) == (500 * MIB, 400 * MIB)


async def test_total_memory_is_the_smaller_of_physical_memory_and_the_cgroup_limit():
    physical = psutil.virtual_memory().total
    cgroup = cgroup_memory_limit()
    assert total_memory() == (min(physical, cgroup) if cgroup else physical)


# --- behaviour --------------------------------------------------------------

async def test_memory_above_a_tiny_limit_refuses_data_with_a_retryable_error(make_limiter, capture):
    limiter = await make_limiter(capture, limit_mib=1, check_interval=0.25)
    with pytest.raises(RefusedError) as refused:
        await limiter.consume(TRACES, spans_request(3))
    assert refused.value.retry_after == 0.25
    assert refused.value.throttle is False  # memory pressure: 503 / UNAVAILABLE, not 429
    assert "high memory usage" in str(refused.value)
    assert capture.received == []
    telemetry = limiter.settings.telemetry
    assert telemetry.value("llmtap_processor_memory_limiter_refused_total", processor="memory_limiter") == 1


async def test_memory_under_the_limit_passes_data_on_unchanged(make_limiter, capture):
    limiter = await make_limiter(capture, limit_mib=rss_mib() + 2048, check_interval=0.25)
    request = spans_request(3)
    await limiter.consume(TRACES, request)
    assert capture.requests() == [request]
    telemetry = limiter.settings.telemetry
    assert telemetry.value("llmtap_processor_outgoing_spans_total", processor="memory_limiter") == 3


async def test_a_burst_within_one_interval_is_caught_on_consume(make_limiter, capture):
    limiter = await make_limiter(capture, limit_mib=rss_mib() + 150, spike_limit_mib=50, check_interval=0.2)
    await limiter.consume(TRACES, spans_request(1))
    ballast = b"x" * (200 * MIB)  # touched pages: real RSS
    time.sleep(0.25)  # blocks the loop: the background check cannot run, only consume can look
    try:
        with pytest.raises(RefusedError):
            await limiter.consume(TRACES, spans_request(1))
    finally:
        del ballast
    assert capture.items() == 1


async def test_refusing_starts_above_the_soft_limit_and_stops_once_memory_falls(make_limiter, capture, caplog):
    limiter = await make_limiter(capture, limit_mib=rss_mib() + 150, spike_limit_mib=50, check_interval=0.02)
    full_collections = gc.get_stats()[2]["collections"]
    with caplog.at_level(logging.INFO, logger="llmtap.processor.memory_limiter"):
        await limiter.consume(TRACES, spans_request(1))
        ballast = b"x" * (200 * MIB)  # above the hard limit
        await until(lambda: limiter.refusing)
        with pytest.raises(RefusedError):
            await limiter.consume(TRACES, spans_request(1))
        assert gc.get_stats()[2]["collections"] > full_collections  # hard limit: a GC was forced
        del ballast
        await until(lambda: not limiter.refusing)
        await limiter.consume(TRACES, spans_request(1))
    assert capture.items() == 2
    messages = [r.getMessage() for r in caplog.records]
    assert "memory usage is above the soft limit: refusing data" in messages
    assert "memory usage is back under the soft limit: accepting data" in messages


async def test_a_backed_up_pipeline_is_refused_before_memory_passes_the_hard_limit(make_limiter, make_settings, host):
    """memory_limiter → batch → a consumer that never finishes: data piles up in
    the senders held by the batch's back-pressure until the limiter refuses."""
    gate = asyncio.Event()
    stuck = CapturingConsumer(gate=gate)
    batch = batch_module.factory.create(make_settings("processor", "batch"),
                                        batch_module.Config(send_batch_size=200, timeout=0.05), TRACES, stuck)
    await batch.start(host)
    limiter = await make_limiter(batch, limit_mib=rss_mib() + 96, spike_limit_mib=32, check_interval=0.02)

    accepted, refusals, peak = [], [], 0
    seed = 0
    deadline = time.monotonic() + 30
    while len(refusals) < 50 and time.monotonic() < deadline:
        seed += 1
        request = spans_request(200, seed=seed)
        sending = asyncio.create_task(limiter.consume(TRACES, request))
        await asyncio.wait([sending], timeout=0.005)
        if sending.done() and isinstance(sending.exception(), RefusedError):
            # Keep what the sender learns, not the exception: its traceback holds the request.
            refused = sending.exception()
            refusals.append((refused.retry_after, refused.throttle))
            del refused
        else:
            accepted.append(sending)
        peak = max(peak, psutil.Process().memory_info().rss)
        del request, sending

    assert refusals, "the limiter never refused although nothing left the pipeline"
    assert set(refusals) == {(0.02, False)}  # retryable, retry after one check interval
    assert peak <= limiter.hard_limit, f"RSS reached {peak // MIB} MiB, hard limit {limiter.hard_limit // MIB} MiB"

    gate.set()  # the consumer recovers: everything accepted arrives
    await asyncio.wait_for(asyncio.gather(*accepted), 30)
    await batch.shutdown()
    assert stuck.items() == 200 * len(accepted)


def test_back_to_back_forced_collections_are_spaced_by_their_own_cost(make_settings, monkeypatch):
    """Above the hard limit with min_gc_interval_when_hard_limited 0, a collection on
    every check would hold the GIL most of the time — starving the threads whose work
    frees memory — while reference counting has already freed all but cycles. So the
    next forced collection waits at least 9 times the last one's duration."""
    limiter = factory.create(make_settings("processor", "memory_limiter"), Config(limit_mib=1), TRACES, None)
    now = [100.0]
    limiter._clock = lambda: now[0]
    collected_at = []

    def slow_collection():  # a full collection that takes 100 ms of (this test's) time
        collected_at.append(now[0])
        now[0] += 0.1

    monkeypatch.setattr(gc, "collect", slow_collection)
    while now[0] < 110.0:  # checks every 10 ms, always above the hard limit (1 MiB)
        limiter.check()
        now[0] += 0.01
    gaps = [b - a for a, b in zip(collected_at, collected_at[1:])]
    assert len(collected_at) >= 9  # still forced, only spaced out
    assert all(gap >= 0.1 + 0.9 - 1e-9 for gap in gaps), gaps  # its 0.1 s, then 9 × 0.1 s idle
    assert sum(0.1 for _ in collected_at) / 10.0 <= 0.11  # about a tenth of the time
