"""cost_attribution: what each model call cost, for whom, and when a budget is crossed.

Expected costs are worked out by hand from the providers' published prices per million
tokens, as the data bundled with genai-prices 0.2.3 has them for a request made on
2026-11-02 at 12:00 UTC (the spans' start time; prices change with time, so every span
here states it). The rates used:

    openai     gpt-4o (2024-08-06)      input 2.50  cached 1.25  output 10.00
               gpt-4o, priority tier    input 4.25               output 17.00
               gpt-4.1                  input 2.00  cached 0.50  output 8.00
               o4-mini                  input 1.10  cached 0.275 output 4.40 (reasoning billed as output)
    anthropic  claude-haiku-4-5         input 1.00  cache read 0.10  cache write (5 min) 1.25  output 5.00
               claude-sonnet-4-5        input 3.00 / 6.00 above 200k input tokens, output 15.00 / 22.50,
                                        cache read 0.30 / 0.60, cache write 3.75 / 7.50
    google     gemini-2.5-pro           input 1.25 / 2.50 above 200k, output 10.00 / 15.00
    perplexity sonar-deep-research      input 2.00  output 8.00  reasoning 3.00 (priced apart)
    deepseek   deepseek-chat            input 0.27 output 1.10 from 00:30 to 16:30 UTC, half that otherwise

The spans are those genai_semconv writes (v1.41: input_tokens includes cached tokens,
output_tokens includes reasoning), with the attributes the eBPF receiver or an OTel SDK adds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from genai_prices import Usage, data
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtap import attributes
from llmtap.component import ComponentID, Kind, Settings, Signal
from llmtap.configtypes import decode_config
from llmtap.processors import cost_attribution
from llmtap.processors.cost_attribution.bundled import rates_of
from llmtap.processors.cost_attribution.prices import TokenUsage, price
from llmtap.telemetry import SelfTelemetry
from processor_support import Collect, _Host

NOON = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
EVENING = datetime(2026, 11, 2, 20, 0, tzinfo=UTC)
LOGGER = "llmtap.processor.cost_attribution"


def ns(when: datetime) -> int:
    return int(when.timestamp()) * 1_000_000_000


def genai_span(provider: str | None = "openai", model: str | None = None, response_model: str | None = None, *,
               input: int | None = None, output: int | None = None, cache_read: int | None = None,
               cache_write: int | None = None, reasoning: int | None = None, operation: str = "chat",
               at: datetime = NOON, **extra: Any) -> Span:
    """A span as genai_semconv leaves it for one model call."""
    span = Span(name=f"{operation} {model}", kind=Span.SPAN_KIND_CLIENT, trace_id=b"\x01" * 16, span_id=b"\x02" * 8,
                start_time_unix_nano=ns(at), end_time_unix_nano=ns(at) + 900_000_000)
    attrs = {"gen_ai.operation.name": operation, "gen_ai.provider.name": provider, "gen_ai.request.model": model,
             "gen_ai.response.model": response_model, "gen_ai.usage.input_tokens": input,
             "gen_ai.usage.output_tokens": output, "gen_ai.usage.cache_read.input_tokens": cache_read,
             "gen_ai.usage.cache_creation.input_tokens": cache_write,
             "gen_ai.usage.reasoning.output_tokens": reasoning, "server.address": "api.example.com", **extra}
    attributes.add(span.attributes, {k: v for k, v in attrs.items() if v is not None})
    return span


def request(*spans: Span, resource: dict | None = None) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    attributes.add(rs.resource.attributes, resource or {"service.name": "support-agent"})
    rs.scope_spans.add().spans.extend(spans)
    return req


class FakeClock:
    def __init__(self, t: float = 1000 * 3600.0):  # on an hour boundary: budget windows' slots start there
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class Harness:
    """One cost_attribution processor, built from a config dict as the service builds it, on a clock
    the test moves."""

    def __init__(self, config: dict | None = None, clock: FakeClock | None = None):
        cfg, errors = decode_config(cost_attribution.Config, config or {})
        assert not errors, errors
        self.telemetry = SelfTelemetry()
        self.sink = Collect()
        self.clock = clock or FakeClock()
        settings = Settings(ComponentID("cost_attribution"), Kind.PROCESSOR, self.telemetry, logging.getLogger(LOGGER))
        self.processor = cost_attribution.factory.create(settings, cfg, Signal.TRACES, self.sink, clock=self.clock)
        asyncio.run(self.processor.start(_Host()))

    def run(self, *spans: Span, resource: dict | None = None) -> list[dict[str, Any]]:
        asyncio.run(self.processor.consume(Signal.TRACES, request(*spans, resource=resource)))
        out = self.sink.received[-1]
        return [attributes.as_dict(s.attributes) for s in out.resource_spans[0].scope_spans[0].spans]

    def metric(self, name: str, **labels: str) -> float:
        return self.telemetry.value(name, processor="cost_attribution", **labels)


def cost_of(span: Span, config: dict | None = None) -> dict[str, Any]:
    [attrs] = Harness(config).run(span)
    return {k: v for k, v in attrs.items() if k == "gen_ai.usage.cost" or k.startswith("llmtap.cost.")}


def write_price_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "prices.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


# ---- costs against hand arithmetic -------------------------------------------------------------

# (what, span, expected USD per part). Each part: tokens × USD per million / 1e6, worked out by hand.
COST_CASES = [
    ("plain chat, the response names the dated model",
     genai_span("openai", "gpt-4o", "gpt-4o-2024-08-06", input=1000, output=500),
     {"input": 0.0025,                  # 1000 × 2.50
      "output": 0.005}),                # 500 × 10.00
    ("cache reads: input_tokens includes the 8000 cached ones",
     genai_span("openai", "gpt-4.1", "gpt-4.1-2025-04-14", input=10_000, cache_read=8_000, output=200),
     {"input": 0.004,                   # (10000 - 8000) × 2.00
      "cache_read": 0.004,              # 8000 × 0.50
      "output": 0.0016}),               # 200 × 8.00
    ("Anthropic cache writes and reads (input_tokens = 3000 fresh + 20000 written + 50000 read)",
     genai_span("anthropic", "claude-haiku-4-5", "claude-haiku-4-5-20251001", input=73_000, cache_write=20_000,
                cache_read=50_000, output=800),
     {"input": 0.003,                   # 3000 × 1.00
      "cache_write": 0.025,             # 20000 × 1.25
      "cache_read": 0.005,              # 50000 × 0.10
      "output": 0.004}),                # 800 × 5.00
    ("reasoning tokens, billed at the output rate (output_tokens includes the 1200 reasoning ones)",
     genai_span("openai", "o4-mini", "o4-mini-2025-04-16", input=2000, output=1500, reasoning=1200),
     {"input": 0.0022,                  # 2000 × 1.10
      "output": 0.00132,                # (1500 - 1200) × 4.40
      "reasoning": 0.00528}),           # 1200 × 4.40
    ("reasoning tokens priced apart",
     genai_span("perplexity", "sonar-deep-research", input=1000, output=5000, reasoning=4000),
     {"input": 0.002,                   # 1000 × 2.00
      "output": 0.008,                  # (5000 - 4000) × 8.00
      "reasoning": 0.012}),             # 4000 × 3.00
    ("long context: above 200k input tokens (cached ones count) every token pays the higher tier",
     genai_span("anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5-20250929", input=250_000, cache_read=100_000,
                output=2000),
     {"input": 0.9,                     # 150000 × 6.00
      "cache_read": 0.06,               # 100000 × 0.60
      "output": 0.045}),                # 2000 × 22.50
    ("exactly 200k input tokens is not above the tier",
     genai_span("anthropic", "claude-sonnet-4-5", input=200_000, output=1000),
     {"input": 0.6,                     # 200000 × 3.00
      "output": 0.015}),                # 1000 × 15.00
    ("Gemini long context, provider gcp.gemini",
     genai_span("gcp.gemini", "gemini-2.5-pro", input=300_000, output=1000, operation="generate_content"),
     {"input": 0.75,                    # 300000 × 2.50
      "output": 0.015}),                # 1000 × 15.00
    ("OpenAI priority tier, as the response reports it",
     genai_span("openai", "gpt-4o", input=1000, output=500, **{"openai.response.service_tier": "priority"}),
     {"input": 0.00425,                 # 1000 × 4.25
      "output": 0.0085}),               # 500 × 17.00
    ("DeepSeek at noon UTC: standard hours",
     genai_span("deepseek", "deepseek-chat", input=100_000, output=10_000, at=NOON),
     {"input": 0.027,                   # 100000 × 0.27
      "output": 0.011}),                # 10000 × 1.10
    ("DeepSeek at 20:00 UTC: off-peak, priced at the span's time, not at the wall clock's",
     genai_span("deepseek", "deepseek-chat", input=100_000, output=10_000, at=EVENING),
     {"input": 0.0135,                  # 100000 × 0.135
      "output": 0.0055}),               # 10000 × 0.55
    ("Azure OpenAI resells OpenAI's model at OpenAI's price",
     genai_span("azure.ai.openai", "my-deployment", "gpt-4o-2024-11-20", input=1000, output=500),
     {"input": 0.0025, "output": 0.005}),
    ("embeddings: input only",
     genai_span("openai", "text-embedding-3-small", input=5000, operation="embeddings"),
     {"input": 0.0001,                  # 5000 × 0.02
      "output": 0.0}),                  # input and output are always written
]


@pytest.mark.parametrize("what,span,parts", COST_CASES, ids=[c[0] for c in COST_CASES])
def test_cost_of_a_model_call_matches_hand_arithmetic(what, span, parts):
    got = cost_of(span)
    assert got.pop("llmtap.cost.price_source") == "genai-prices 0.2.3"
    assert got.pop("llmtap.cost.currency") == "USD"
    assert got.pop("llmtap.cost.estimated") is False
    total = got.pop("gen_ai.usage.cost")
    assert {k.removeprefix("llmtap.cost."): v for k, v in got.items()} == pytest.approx(parts, abs=1e-12)
    assert total == pytest.approx(sum(parts.values()), abs=1e-12)


def test_parts_add_up_to_the_total_as_genai_prices_computes_it_for_every_bundled_model():
    """Our split by token kind gives the same total as genai-prices' own calc_price, given the same call
    in its Usage terms (input_tokens, like v1.41's, includes cache reads and writes; output_tokens
    includes output_reasoning_tokens): the conversion loses nothing, for every model it prices."""
    ours = TokenUsage(input=250_000, output=3000, cache_read=40_000, cache_write=10_000, reasoning=1000)
    theirs = Usage(input_tokens=250_000, output_tokens=3000, cache_read_tokens=40_000, cache_write_tokens=10_000,
                   output_reasoning_tokens=1000)
    compared = 0
    for provider in data.providers:
        for model in provider.models:
            rates = rates_of(model.get_prices(NOON))
            if rates is None:  # no token prices (audio hours, pages): not a call we price
                continue
            cost = price(ours, rates)
            assert cost.total == sum(cost.parts.values(), rates.per_request)
            assert cost.total == model.calc_price(theirs, provider, genai_request_timestamp=NOON).total_price, \
                (provider.id, model.id)
            compared += 1
    assert compared > 2000


def test_estimated_tokens_give_an_estimated_cost():
    span = genai_span("openai", "gpt-4o", input=1000, output=500,
                      **{"llmtap.usage.estimated": True, "llmtap.usage.encoding": "o200k_base"})
    got = cost_of(span)
    assert got["llmtap.cost.estimated"] is True
    assert got["gen_ai.usage.cost"] == pytest.approx(0.0075)


def test_the_development_conventions_cache_write_attribute_is_read_too():
    span = genai_span("anthropic", "claude-haiku-4-5", input=21_000,
                      output=0, **{"gen_ai.usage.cache_write.input_tokens": 20_000})
    got = cost_of(span)
    assert got["llmtap.cost.cache_write"] == pytest.approx(0.025)   # 20000 × 1.25
    assert got["llmtap.cost.input"] == pytest.approx(0.001)         # 1000 × 1.00


def run_with_genai_semconv(raw: Span, cost_config: dict) -> dict[str, Any]:
    """A raw exchange through genai_semconv, then cost_attribution, as the default pipeline orders them."""
    import importlib

    from llmtap.registry import default_registry
    from processor_support import build_chain
    registry = default_registry()
    for type_ in ("genai_semconv", "cost_attribution"):
        if registry.get(Kind.PROCESSOR, type_) is None:
            registry.add(importlib.import_module(f"llmtap.processors.{type_}").factory)
    chain, sink = build_chain(Signal.TRACES, ("genai_semconv", {}), ("cost_attribution", cost_config),
                              registry=registry)

    async def go():
        for p in chain:
            await p.start(_Host())
        await chain[0].consume(Signal.TRACES, request(raw, resource={"service.name": "support-agent"}))

    asyncio.run(go())
    [out] = sink.received
    return attributes.as_dict(out.resource_spans[0].scope_spans[0].spans[0].attributes)


def test_sdk_exchanges_mapped_by_genai_semconv_are_priced():
    """The bytes the official SDKs send and the providers' documented responses, through the mapping
    that feeds this processor: its token arithmetic is the one genai_semconv writes."""
    from test_genai_semconv import CHAT_RESPONSE, MESSAGE_RESPONSE, SdkExchange

    config = {"dimensions": {"agent": ["resource:service.name"]}}
    x = SdkExchange(CHAT_RESPONSE)  # 1117 prompt tokens of which 1024 cached, 46 completion tokens
    x.openai().chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Capital of France?"}])
    raw = x.span()
    raw.start_time_unix_nano = ns(NOON)
    attrs = run_with_genai_semconv(raw, config)
    assert {k: attrs[k] for k in ("llmtap.cost.input", "llmtap.cost.cache_read", "llmtap.cost.output")} == \
        pytest.approx({"llmtap.cost.input": 0.0002325,        # 93 × 2.50
                       "llmtap.cost.cache_read": 0.00128,     # 1024 × 1.25
                       "llmtap.cost.output": 0.00046})        # 46 × 10.00
    assert attrs["gen_ai.usage.cost"] == pytest.approx(0.0019725)
    assert attrs["llmtap.attribution.agent"] == "support-agent"

    x = SdkExchange(MESSAGE_RESPONSE)  # 21 fresh input tokens, 188 written to the cache, 1800 read from it
    x.anthropic().messages.create(model="claude-sonnet-4-5", max_tokens=1024,
                                  messages=[{"role": "user", "content": "Capital of France?"}])
    raw = x.span()
    raw.start_time_unix_nano = ns(NOON)
    attrs = run_with_genai_semconv(raw, config)
    assert {k: v for k, v in attrs.items() if k.startswith("llmtap.cost.") and isinstance(v, float)} == \
        pytest.approx({"llmtap.cost.input": 0.000063,         # 21 × 3.00
                       "llmtap.cost.cache_write": 0.000705,   # 188 × 3.75
                       "llmtap.cost.cache_read": 0.00054,     # 1800 × 0.30
                       "llmtap.cost.output": 0.000075})       # 5 × 15.00
    assert attrs["gen_ai.usage.cost"] == pytest.approx(0.001383)


# ---- the user's price file ---------------------------------------------------------------------

PRICE_FILE = """\
    version: acme-contract-2026-10
    models:
      - provider: openai
        model: gpt-4o-2024-08-06        # negotiated
        input: 2.00
        output: 8.00
        cache_read: 1.00
      - provider: openai
        model_prefix: "ft:gpt-4o-mini"  # our fine-tunes
        input: 0.30
        output: 1.20
      - model: acme-private-7b          # any provider
        input: 0.10
        output: 0.10
        tiers:
          - above_input_tokens: 100000
            output: 0.40
      - provider: ollama                # local: free
        model_regex: ".*"
        input: 0
        output: 0
"""


@pytest.fixture
def price_file(tmp_path):
    return write_price_file(tmp_path, PRICE_FILE)


def test_a_negotiated_price_overrides_the_bundled_one(price_file):
    got = cost_of(genai_span("openai", "gpt-4o", "gpt-4o-2024-08-06", input=3000, cache_read=1000, output=500),
                  {"price_file": price_file})
    assert got["llmtap.cost.input"] == pytest.approx(0.004)        # 2000 × 2.00
    assert got["llmtap.cost.cache_read"] == pytest.approx(0.001)   # 1000 × 1.00
    assert got["llmtap.cost.output"] == pytest.approx(0.004)       # 500 × 8.00
    assert got["gen_ai.usage.cost"] == pytest.approx(0.009)
    assert got["llmtap.cost.price_source"] == f"file:{price_file} acme-contract-2026-10"


def test_models_the_file_does_not_list_keep_their_bundled_price(price_file):
    got = cost_of(genai_span("openai", "gpt-4.1", input=1000, output=0), {"price_file": price_file})
    assert got["gen_ai.usage.cost"] == pytest.approx(0.002)
    assert got["llmtap.cost.price_source"] == "genai-prices 0.2.3"


def test_fine_tuned_models_by_prefix_and_private_ones_with_a_tier(price_file):
    config = {"price_file": price_file}
    got = cost_of(genai_span("openai", "ft:gpt-4o-mini-2024-07-18:acme::9xYz", input=10_000, output=1000), config)
    assert got["gen_ai.usage.cost"] == pytest.approx(0.0042)       # 10000 × 0.30 + 1000 × 1.20
    got = cost_of(genai_span("vllm", "acme-private-7b", input=150_000, output=10_000), config)
    assert got["llmtap.cost.input"] == pytest.approx(0.015)        # 150000 × 0.10 (input has no tier)
    assert got["llmtap.cost.output"] == pytest.approx(0.004)       # 10000 × 0.40 (above 100k input tokens)


def test_a_local_model_costs_zero_when_the_file_says_so(price_file):
    got = cost_of(genai_span("ollama", "llama3.2:3b", input=1200, output=300), {"price_file": price_file})
    assert got["gen_ai.usage.cost"] == 0.0
    assert got["llmtap.cost.price_source"].startswith("file:")


def test_without_bundled_prices_only_the_file_prices(price_file):
    got = cost_of(genai_span("openai", "gpt-4.1", input=1000, output=0),
                  {"price_file": price_file, "bundled_prices": False})
    assert "gen_ai.usage.cost" not in got
    assert got["llmtap.cost.error"] == "no price for model 'gpt-4.1' (provider 'openai')"


# ---- no price: no cost, a counted warning -----------------------------------------------------

def test_an_unknown_model_gets_no_cost_and_a_warning_once_per_model_per_hour(caplog):
    caplog.set_level(logging.WARNING, LOGGER)
    h = Harness()
    spans = [genai_span("openai", "gpt-9-turbo-preview", input=100, output=10) for _ in range(3)]
    out = h.run(*spans, genai_span("openai", "gpt-4o", input=1000, output=500))
    assert [("gen_ai.usage.cost" in attrs) for attrs in out] == [False, False, False, True]
    assert out[0]["llmtap.cost.error"] == "no price for model 'gpt-9-turbo-preview' (provider 'openai')"
    assert h.metric("llmtap_processor_cost_attribution_unknown_model_spans_total",
                    provider="openai", model="gpt-9-turbo-preview") == 3
    [record] = caplog.records
    assert "gpt-9-turbo-preview" in record.getMessage()
    assert record.fields["model"] == "gpt-9-turbo-preview"

    h.clock.advance(1800)
    h.run(genai_span("openai", "gpt-9-turbo-preview", input=100, output=10))
    assert len(caplog.records) == 1  # the same model within the hour: counted, not logged again
    h.clock.advance(1801)
    h.run(genai_span("openai", "gpt-9-turbo-preview", input=100, output=10))
    assert len(caplog.records) == 2
    assert h.metric("llmtap_processor_cost_attribution_unknown_model_spans_total",
                    provider="openai", model="gpt-9-turbo-preview") == 5


def test_a_local_provider_is_not_given_a_cloud_price():
    """ollama is not a provider genai-prices knows: its llama model must not get some host's price."""
    got = cost_of(genai_span("ollama", "llama3.1:8b", input=100, output=10))
    assert "gen_ai.usage.cost" not in got and "llmtap.cost.error" in got


def test_unknown_model_labels_are_bounded():
    h = Harness()
    h.run(*[genai_span("openai", f"custom-{i}", input=1, output=1) for i in range(150)])
    assert h.metric("llmtap_processor_cost_attribution_unknown_model_spans_total",
                    provider="openai", model="custom-99") == 1
    assert h.metric("llmtap_processor_cost_attribution_unknown_model_spans_total",
                    provider="_other", model="_other") == 50


def test_usage_that_contradicts_itself_is_marked_and_the_rest_of_the_batch_is_priced():
    h = Harness()
    bad = genai_span("openai", "gpt-4.1", input=100, cache_read=900, output=10)
    out = h.run(bad, genai_span("openai", "gpt-4.1", input=1000, output=0))
    assert "gen_ai.usage.cost" not in out[0]
    assert out[0]["llmtap.cost.error"] == ("invalid usage: cache_read (900) + cache_write (0) tokens exceed input "
                                           "tokens (100), which include them")
    assert out[1]["gen_ai.usage.cost"] == pytest.approx(0.002)
    assert h.metric("llmtap_processor_cost_attribution_invalid_usage_spans_total") == 1


def test_what_is_not_priced():
    h = Harness()
    out = h.run(
        genai_span("openai", "gpt-4o", input=1000, output=500, operation="invoke_agent"),  # summed over its calls
        genai_span("openai", "gpt-4o"),                                                      # no usage reported
        Span(name="GET /healthz", start_time_unix_nano=ns(NOON)),                            # not a GenAI span
    )
    assert [a for a in out if "gen_ai.usage.cost" in a or "llmtap.cost.error" in a] == []
    assert out[2] == {}


# ---- attribution ----------------------------------------------------------------------------

DIMENSIONS = {
    "tenant": ["header:X-Tenant-Id", "resource:k8s.namespace.name"],
    "user": ["span:user.id"],
    "agent": ["resource:service.name", "process:executable.name"],
}


def test_attribution_takes_the_first_source_that_has_a_value():
    h = Harness({"dimensions": DIMENSIONS})
    resource = {"service.name": "support-agent", "k8s.namespace.name": "team-billing"}
    with_header = genai_span("openai", "gpt-4o", input=10, output=1, **{
        "llmtap.http.request.header.x-tenant-id": ["acme", "ignored"], "user.id": "u-123"})
    without_header = genai_span("openai", "gpt-4o", input=10, output=1)
    out = h.run(with_header, without_header, resource=resource)
    assert {k: v for k, v in out[0].items() if k.startswith("llmtap.attribution.")} == {
        "llmtap.attribution.tenant": "acme", "llmtap.attribution.user": "u-123",
        "llmtap.attribution.agent": "support-agent"}
    assert {k: v for k, v in out[1].items() if k.startswith("llmtap.attribution.")} == {
        "llmtap.attribution.tenant": "team-billing", "llmtap.attribution.agent": "support-agent"}


def test_process_sources_read_the_span_then_the_resource_and_semconv_headers_count():
    h = Harness({"dimensions": {"agent": ["process:executable.name"], "tenant": ["header:x-tenant-id"]}})
    captured = genai_span("anthropic", "claude-haiku-4-5", input=10, output=1, **{
        "process.executable.name": "python3.11", "http.request.header.x-tenant-id": ["globex"]})
    sdk = genai_span("anthropic", "claude-haiku-4-5", input=10, output=1)
    out = h.run(captured, sdk, resource={"process.executable.name": "node"})
    assert out[0]["llmtap.attribution.agent"] == "python3.11"
    assert out[0]["llmtap.attribution.tenant"] == "globex"
    assert out[1]["llmtap.attribution.agent"] == "node"
    assert "llmtap.attribution.tenant" not in out[1]


def test_an_attribution_already_on_the_span_is_kept_and_only_genai_spans_are_attributed():
    h = Harness({"dimensions": {"tenant": ["resource:k8s.namespace.name"]}})
    upstream = genai_span("openai", "gpt-4o", input=10, output=1, **{"llmtap.attribution.tenant": "initech"})
    process_span = Span(name="exec python3", start_time_unix_nano=ns(NOON))
    out = h.run(upstream, process_span, resource={"k8s.namespace.name": "default"})
    assert out[0]["llmtap.attribution.tenant"] == "initech"
    assert out[1] == {}


def test_attribution_values_are_cut_to_a_bounded_length():
    h = Harness({"dimensions": {"tenant": ["header:x-tenant-id"]}})
    [out] = h.run(genai_span("openai", "gpt-4o", input=1, output=1,
                             **{"llmtap.http.request.header.x-tenant-id": ["t" * 10_000]}))
    assert out["llmtap.attribution.tenant"] == "t" * 256


# ---- budgets ----------------------------------------------------------------------------------

def budget_config(**budget) -> dict:
    return {"dimensions": {"tenant": ["header:x-tenant-id"]},
            "budgets": [{"dimension": "tenant", "limit_usd": 1.0, "window": "1h", **budget}]}


def call(tenant: str, usd_of_output: float) -> Span:
    """A gpt-4.1 call costing exactly `usd_of_output` (output at 8.00 USD per million tokens)."""
    return genai_span("openai", "gpt-4.1", input=0, output=round(usd_of_output * 1e6 / 8),
                      **{"llmtap.http.request.header.x-tenant-id": [tenant]})


def test_crossing_a_budget_is_logged_once_with_its_numbers_and_counted(caplog):
    caplog.set_level(logging.INFO, LOGGER)
    h = Harness(budget_config())
    exceeded = ("llmtap_processor_cost_attribution_budget_exceeded_total", {"dimension": "tenant", "value": "acme"})
    over = ("llmtap_processor_cost_attribution_budget_over", {"dimension": "tenant", "value": "acme"})

    h.run(call("acme", 0.40), call("acme", 0.40))             # 0.80 of 1.00
    h.clock.advance(60)
    h.run(call("acme", 0.40), call("globex", 0.40))           # acme: 1.20 > 1.00
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.fields == {"processor": "cost_attribution", "dimension": "tenant", "value": "acme",
                             "spend_usd": pytest.approx(1.2), "budget_usd": 1.0, "window_s": 3600.0}
    assert "acme" in record.getMessage() and "1.20" in record.getMessage()
    assert h.metric(exceeded[0], **exceeded[1]) == 1 and h.metric(over[0], **over[1]) == 1

    h.clock.advance(60)
    h.run(call("acme", 0.40))                                 # still over: no second record
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert h.metric(exceeded[0], **exceeded[1]) == 1

    # An hour after the first two calls they have left the window; the last two (0.80) are
    # within budget.
    h.clock.advance(58 * 60)
    h.run()
    [back] = [r for r in caplog.records if r.levelno == logging.INFO]
    assert back.fields["value"] == "acme" and back.fields["spend_usd"] == pytest.approx(0.8)
    assert h.metric(over[0], **over[1]) == 0

    h.run(call("acme", 0.30))                                 # 1.10: over again, a new crossing
    assert h.metric(exceeded[0], **exceeded[1]) == 2
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


def test_budgets_per_value_override_the_default_and_unlisted_values_may_have_none():
    h = Harness(budget_config(limit_usd=None, values={"acme": 0.5}))
    h.run(call("acme", 0.60), call("globex", 5.0))
    assert h.metric("llmtap_processor_cost_attribution_budget_exceeded_total", dimension="tenant", value="acme") == 1
    assert h.metric("llmtap_processor_cost_attribution_budget_exceeded_total", dimension="tenant",
                    value="globex") == 0


def test_a_budget_window_forgets_quiet_values_and_bounds_how_many_it_tracks(caplog):
    caplog.set_level(logging.WARNING, LOGGER)
    h = Harness(budget_config(max_values=2))
    budget = h.processor._budgets[0]
    h.run(call("a", 0.1), call("b", 0.1), call("c", 2.0))      # c is not tracked: no crossing
    assert budget.tracked == 2 and budget.untracked == 1
    assert "max_values" in caplog.records[-1].getMessage()
    h.clock.advance(3600)
    h.run(call("c", 2.0))                                      # a and b left the window: room for c
    assert budget.tracked == 1
    assert h.metric("llmtap_processor_cost_attribution_budget_exceeded_total", dimension="tenant", value="c") == 1


def test_estimated_costs_count_towards_budgets_and_a_span_without_the_dimension_does_not():
    h = Harness(budget_config())
    estimated = genai_span("openai", "gpt-4.1", input=0, output=150_000, **{
        "llmtap.usage.estimated": True, "llmtap.http.request.header.x-tenant-id": ["acme"]})
    anonymous = genai_span("openai", "gpt-4.1", input=0, output=1_000_000)
    h.run(estimated, anonymous)
    assert h.processor._budgets[0].spend("acme", h.clock()) == pytest.approx(1.2)
    assert h.processor._budgets[0].tracked == 1


# ---- config ------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,message", [
    ({"dimensions": {"tenant": ["hdr:x-tenant-id"]}},
     "dimensions.tenant[0]: unknown source 'hdr' (known: header, span, resource, process)"),
    ({"dimensions": {"tenant": ["x-tenant-id"]}},
     "dimensions.tenant[0]: expected 'kind:name' (kind one of header, span, resource, process), "
     "e.g. header:x-tenant-id; got 'x-tenant-id'"),
    ({"dimensions": {"tenant": ["header:"]}},
     "dimensions.tenant[0]: header: needs a name after the colon, e.g. header:x-tenant-id"),
    ({"dimensions": {"tenant": []}}, "dimensions.tenant: list at least one source, e.g. header:x-tenant-id"),
    ({"dimensions": {"team-name": ["span:team"]}},
     "dimensions.team-name: a dimension name is letters, digits and _ (it becomes llmtap.attribution.team-name "
     "and a metric label)"),
    ({"dimensions": {"tenant": ["span:t"]}, "budgets": [{"dimension": "tenat", "limit_usd": 5}]},
     "budgets[0].dimension: 'tenat' is not a configured dimension (tenant)"),
    ({"dimensions": {"tenant": ["span:t"]}, "budgets": [{"dimension": "tenant"}]},
     "budgets[0].limit_usd: set limit_usd, values, or both"),
    ({"dimensions": {"tenant": ["span:t"]}, "budgets": [{"dimension": "tenant", "limit_usd": -1}]},
     "budgets[0].limit_usd: must not be negative; got -1.0"),
    ({"dimensions": {"tenant": ["span:t"]}, "budgets": [{"dimension": "tenant", "limit_usd": 5, "window": "0s"}]},
     "budgets[0].window: must be greater than 0"),
    ({"dimensions": {"tenant": ["span:t"]}, "budgets": [{"dimension": "tenant", "limit_usd": 5, "window": "1d"}]},
     "budgets[0].window: invalid duration '1d' (expected e.g. 5s, 200ms, 1m30s)"),
    ({"bundled_prices": False}, "bundled_prices: with the bundled prices off, a price_file is needed "
                                "(nothing would be priced)"),
    ({"price_file": "/nonexistent/prices.yaml"},
     "price_file: /nonexistent/prices.yaml: cannot read: No such file or directory"),
])
def test_config_errors_name_the_key(raw, message):
    _, errors = decode_config(cost_attribution.Config, raw)
    assert errors == [message]


def test_the_service_config_reports_errors_with_the_component_id():
    import yaml

    from llmtap.config import ConfigError, parse
    from llmtap.registry import default_registry
    registry = default_registry()
    if registry.get(Kind.PROCESSOR, "cost_attribution") is None:
        registry.add(cost_attribution.factory)
    raw = yaml.safe_load("""
        receivers: {otlp: {protocols: {grpc: {}}}}
        processors:
          cost_attribution/tenants:
            dimensions:
              tenant: [hdr:x-tenant-id, resource:k8s.namespace.name]
        exporters: {debug: {}}
        service:
          pipelines:
            traces: {receivers: [otlp], processors: [cost_attribution/tenants], exporters: [debug]}
        """)
    with pytest.raises(ConfigError) as e:
        parse(raw, registry)
    assert e.value.errors == ["processors::cost_attribution/tenants: dimensions.tenant[0]: unknown source 'hdr' "
                              "(known: header, span, resource, process)"]


def regex_error(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as e:
        return str(e)
    raise AssertionError(f"{pattern!r} compiles")


def test_price_file_errors_name_their_place_in_the_file(tmp_path):
    path = write_price_file(tmp_path, """\
        models:
          - model: gpt-4o
            input: "2.50"
            output: 10
          - provider: openai
            input: 1
            output: 2
          - model: x
            model_regex: "x.*"
            input: 1
            output: 1
          - model_regex: "(unclosed"
            input: 1
            output: 1
          - model: y
            input: 1
          - model: z
            input: 1
            output: 1
            cache_read: 0.1
            tiers:
              - above_input_tokens: 200000
                cache_write: 2
              - above_input_tokens: 100000
                input: 2
          - model: w
            inptu: 1
            input: 1
            output: 1
        """)
    _, errors = decode_config(cost_attribution.Config, {"price_file": path})
    assert errors == [f"price_file: {path}: {e}" for e in [
        "models[0].input: expected a price in USD per million tokens (a number >= 0), got '2.50'",
        "models[1]: needs exactly one of model, model_prefix, model_regex",
        "models[2]: needs exactly one of model, model_prefix, model_regex (has model, model_regex)",
        f"models[3].model_regex: invalid regular expression '(unclosed': {regex_error('(unclosed')}",
        "models[4].output: required (USD per million tokens; 0 for a free model)",
        "models[5].tiers[0].cache_write: the entry has no base cache_write price for this tier to change",
        "models[5].tiers[1].above_input_tokens: tiers must be in ascending order; 100000 follows 200000",
        "models[6].inptu: unknown key (known keys: provider, model, model_prefix, model_regex, input, output, "
        "cache_read, cache_write, reasoning, tiers)",
    ]]


def test_the_processor_handles_traces_only():
    assert cost_attribution.factory.signals == frozenset({Signal.TRACES})


# ---- offline -----------------------------------------------------------------------------------

OFFLINE_RUN = """
import asyncio, logging, socket, threading
from datetime import datetime, timezone

def no_network(*args, **kwargs):
    raise AssertionError("cost_attribution tried to open a connection")
socket.socket.connect = no_network
socket.create_connection = no_network

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from llmtap import attributes
from llmtap.component import ComponentID, Kind, Settings, Signal
from llmtap.configtypes import decode_config
from llmtap.processors import cost_attribution
from llmtap.telemetry import SelfTelemetry

class Sink:
    async def consume(self, signal, data):
        self.data = data

config, errors = decode_config(cost_attribution.Config, {})
assert not errors
sink = Sink()
processor = cost_attribution.factory.create(
    Settings(ComponentID("cost_attribution"), Kind.PROCESSOR, SelfTelemetry(), logging.getLogger("x")),
    config, Signal.TRACES, sink)
req = ExportTraceServiceRequest()
span = req.resource_spans.add().scope_spans.add().spans.add(
    name="chat gpt-4o", start_time_unix_nano=int(datetime(2026, 11, 2, 12, tzinfo=timezone.utc).timestamp()) * 10**9)
attributes.add(span.attributes, {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 500})
asyncio.run(processor.consume(Signal.TRACES, req))
out = attributes.as_dict(sink.data.resource_spans[0].scope_spans[0].spans[0].attributes)
assert not [t for t in threading.enumerate() if t.name.startswith("genai_prices")], "a price update thread runs"
print(out["gen_ai.usage.cost"], out["llmtap.cost.price_source"])
"""


def test_prices_come_from_the_installed_package_without_a_network():
    """In a network namespace with no interface up, and with connections forbidden besides: the bundled
    prices are all there is, and all that is needed."""
    proc = subprocess.run(["unshare", "--net", sys.executable, "-c", OFFLINE_RUN],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0.0075", "genai-prices", "0.2.3"]
