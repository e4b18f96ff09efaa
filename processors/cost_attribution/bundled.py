"""Model prices from the data that ships inside the `genai-prices` package, and only that.

genai-prices keeps its price list as a Python module (`genai_prices.data`); its optional
`UpdatePrices` thread would fetch a newer list over HTTP and install it process-wide with
`set_custom_snapshot`. We never start it, and we read `genai_prices.data.providers`
directly rather than the package's current snapshot, so that prices stay those of the
installed version (recorded as `SOURCE`) even if other code in the process fetched some.

Matching is provider-aware, with genai-prices' own rules: `gen_ai.provider.name` is
mapped to a genai-prices provider id (`PROVIDER_IDS`, then genai-prices' provider
matching), whose models are matched against the model name (falling back to the
providers it resells, e.g. Azure → OpenAI). A span that names a provider genai-prices
does not know (ollama, a self-hosted server) gets no bundled price: guessing from the
model name alone would put a cloud price on a local model. Only a span with no provider
at all is matched by model name across providers.

A price may depend on the request's time (new prices from a date, DeepSeek's off-peak
hours) and on the OpenAI service tier (flex, priority): the caller passes both.

Cost: a lookup walks one provider's model list (~100 match clauses); results, misses
included, are kept in an LRU cache of `cache_size` entries, so memory stays bounded
however many distinct model names the spans carry.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from importlib.metadata import version

from genai_prices import data as _bundled
from genai_prices import types as gp
from genai_prices.data_snapshot import find_provider_by_id

from llmtap.processors.cost_attribution.prices import Rate, Rates, Tiered

SOURCE = f"genai-prices {version('genai-prices')}"

# gen_ai.provider.name (the spec's well-known values, and genai_semconv's custom ones)
# → genai-prices provider id, where genai-prices' own provider matching would miss or
# mislead (its "openai" provider claims any name containing "openai", azure.ai.openai too).
PROVIDER_IDS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "aws.bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral_ai": "mistral",
    "x_ai": "x-ai",
    "perplexity": "perplexity",
    "cohere": "cohere",
    "openrouter": "openrouter",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "moonshot_ai": "moonshotai",
    "cerebras": "cerebras",
}


def _rate(value: object) -> Rate | None:
    if isinstance(value, gp.TieredPrices):
        return Tiered(value.base, tuple((tier.start, tier.price) for tier in value.tiers))
    return value if isinstance(value, Decimal) else None


def rates_of(model_price: gp.ModelPrice) -> Rates | None:
    """Our Rates for a genai-prices ModelPrice; None when it prices no tokens at all (an
    audio-seconds or per-image model): a zero would be made up."""
    input_rate, output_rate = _rate(model_price.input_mtok), _rate(model_price.output_mtok)
    if input_rate is None and output_rate is None:
        return None
    per_thousand_requests = model_price.requests_kcount
    return Rates(
        input=input_rate if input_rate is not None else Decimal(0),  # unpriced: free, as genai-prices bills it
        output=output_rate if output_rate is not None else Decimal(0),
        cache_read=_rate(model_price.cache_read_mtok),
        cache_write=_rate(model_price.cache_write_mtok),
        reasoning=_rate(model_price.output_reasoning_mtok),
        per_request=per_thousand_requests / 1000 if isinstance(per_thousand_requests, Decimal) else Decimal(0),
    )


class BundledPrices:
    source = SOURCE

    def __init__(self, cache_size: int = 4096):
        self._providers: list[gp.Provider] = _bundled.providers
        self._find = functools.lru_cache(maxsize=cache_size)(self._find_uncached)

    def _find_uncached(self, provider_name: str, model: str) -> tuple[gp.ModelInfo, bool] | None:
        """The model's entry, and whether it is the provider's own (not one it resells)."""
        if provider_name:
            provider = find_provider_by_id(self._providers, PROVIDER_IDS.get(provider_name, provider_name))
            candidates = [provider] if provider is not None else []
        else:
            candidates = [p for p in self._providers if p.model_match is not None and p.model_match.is_match(model)]
        for provider in candidates:
            info = provider.find_model(model, all_providers=self._providers)
            if info is not None:
                return info, any(info is own for own in provider.models)
        return None

    def rates(self, provider_name: str, model: str, when: datetime, service_tier: str | None) -> Rates | None:
        found = self._find(provider_name.lower(), model.lower())
        if found is None:
            return None
        info, own = found
        # As genai-prices does: a tier's variant prices belong to the provider that sells at them.
        context = {"service_tier": service_tier} if service_tier and own else None
        return rates_of(info.get_prices(when, context))
