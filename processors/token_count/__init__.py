"""`token_count` processor: every GenAI model call gets its token counts — the provider's when
it reported them, an estimate with tiktoken when it did not (docs/genai.md, "token_count").

Per span with `gen_ai.operation.name` chat, text_completion, generate_content or embeddings:
- `gen_ai.usage.input_tokens` / `gen_ai.usage.output_tokens` that are present are the
  provider's truth and are never changed. Each one that is missing is estimated on its own
  (a stream cut before its usage chunk may lack both; some servers report only the prompt);
- the estimate uses the model's encoding (models.py: `gen_ai.response.model`, else
  `gen_ai.request.model`) and OpenAI's chat framing (chat_format.py) over the content
  attributes. The span is marked `llmtap.usage.estimated` = true, `llmtap.usage.encoding`
  and `llmtap.usage.estimated_types` (["input"], ["output"] or both);
- without the content to count (captured with capture_content: none, or an instrumentation
  that records no messages) nothing is estimated and `llmtap.usage.error` says which count
  is missing and why. A failed call (error.type set) with no output content is left alone:
  the provider charges nothing for a refused request.
A span that cannot be counted is marked `llmtap.usage.error` and passed on; the rest of the
batch is unaffected.

Vocabularies come from installed packages (vocabulary.py): nothing is downloaded, ever.
Counting is exact over the model's BPE vocabulary, by toktok-rs's Rust counter or by tiktoken
itself (`counter`): the two give the same counts.
Cost: a span with usage costs one pass over its attributes. An estimate costs the JSON parse
of its content attributes (~25 µs per 4 KiB), the counting (toktok ~20 µs, tiktoken ~170 µs
per 4 KiB of English) and writing five attributes; the first span of an encoding loads it
(toktok ~0.1 s and ~50 MiB; tiktoken ~1 s and ~80 MiB; once per process).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from llmtap import attributes
from llmtap.component import Consumer, Factory, Kind, Settings, Signal, Stability
from llmtap.configtypes import doc
from llmtap.processorhelper import SpanProcessor
from llmtap.processors.token_count import chat_format, vocabulary
from llmtap.processors.token_count.models import ModelTable

INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
ESTIMATED = "llmtap.usage.estimated"
ENCODING = "llmtap.usage.encoding"
ESTIMATED_TYPES = "llmtap.usage.estimated_types"
ERROR = "llmtap.usage.error"

SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
_OPERATION = "gen_ai.operation.name"
_MODELS = ("gen_ai.response.model", "gen_ai.request.model")
_READ = frozenset({INPUT_TOKENS, OUTPUT_TOKENS, SYSTEM_INSTRUCTIONS, INPUT_MESSAGES, OUTPUT_MESSAGES,
                   TOOL_DEFINITIONS, _OPERATION, *_MODELS, "error.type"})
MODEL_CALLS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})

Encoding = Literal["o200k_base", "cl100k_base", "o200k_harmony"]


@dataclass
class Config:
    default_encoding: Encoding = field(default="o200k_base", metadata=doc(
        "Encoding for a model that neither `models` nor the built-in table knows (and for spans without a "
        "model name)."))
    models: dict[str, str] = field(default_factory=dict, metadata=doc(
        "Model-name prefix → encoding (o200k_base, cl100k_base, o200k_harmony), checked before the built-in "
        "table; the longest prefix wins. E.g. {my-finetune: cl100k_base}."))
    counter: Literal["toktok", "tiktoken"] = field(default="toktok", metadata=doc(
        "What counts the tokens of a text. toktok: toktok-rs's Rust counter (counts identical to tiktoken's on the "
        "same vocabulary, about 8x faster: it builds no token ids). tiktoken: tiktoken's encode_ordinary, with the "
        "encoding built from the same package data (~1 s and ~80 MiB more per encoding)."))
    estimate_input: bool = field(default=True, metadata=doc(
        "Estimate gen_ai.usage.input_tokens when the provider did not report it."))
    estimate_output: bool = field(default=True, metadata=doc(
        "Estimate gen_ai.usage.output_tokens when the provider did not report it."))

    def validate(self) -> list[str]:
        errors = []
        for prefix, encoding in self.models.items():
            if not prefix.strip():
                errors.append("models: a model-name prefix must not be empty")
            if encoding not in vocabulary.ENCODINGS:
                errors.append(f"models.{prefix}: must be one of {', '.join(vocabulary.ENCODINGS)}; got {encoding!r}")
        return errors


class _BadContent(Exception):
    """A count that cannot be made from what the span carries."""


class TokenCountProcessor(SpanProcessor):
    def __init__(self, settings: Settings, config: Config, signal: Signal, next: Consumer):
        super().__init__(settings, config, signal, next)
        self._models = ModelTable(config.models, config.default_encoding)
        self._counters: dict[str, vocabulary.TokenCounter] = {}
        self._broken_encodings: set[str] = set()  # logged once each

    def process_span(self, span: Span, resource=None) -> None:
        """Fill the missing usage of one span in place; never raises."""
        try:
            updates = self._estimate(span)
        except Exception as e:  # one bad span must not cost the batch
            self.logger.warning("cannot count tokens of span %r: %s: %s", span.name, type(e).__name__, e)
            updates = {ERROR: f"internal error: {type(e).__name__}: {e}"}
        if updates:
            attributes.update(span.attributes, updates)

    def _estimate(self, span: Span) -> dict[str, Any]:
        # Only the attributes needed, converted once: the content ones are the span's bulk.
        raw = {kv.key: kv.value for kv in span.attributes if kv.key in _READ}
        operation = attributes.to_python(raw[_OPERATION]) if _OPERATION in raw else None
        if operation not in MODEL_CALLS:
            return {}
        want_input = self.config.estimate_input and INPUT_TOKENS not in raw
        want_output = self.config.estimate_output and OUTPUT_TOKENS not in raw and operation != "embeddings"
        if not (want_input or want_output):
            return {}
        if "error.type" in raw and OUTPUT_MESSAGES not in raw:
            return {}
        model = next((m for m in (attributes.to_python(raw[k]) for k in _MODELS if k in raw) if m), None)
        family = self._models.lookup(model if isinstance(model, str) else None)
        fmt = family.chat if operation in ("chat", "generate_content") else chat_format.PLAIN
        count = self._counters.get(family.encoding)
        if count is None:
            try:
                count = self._counters[family.encoding] = vocabulary.TokenCounter(family.encoding, self.config.counter)
            except vocabulary.VocabularyError as e:
                if family.encoding not in self._broken_encodings:
                    self._broken_encodings.add(family.encoding)
                    self.logger.warning("cannot estimate tokens with %s: %s", family.encoding, e)
                return {ERROR: f"no {family.encoding} vocabulary: {e}"}

        def content(key: str) -> Any:
            if key not in raw:
                return None
            try:
                return chat_format.parse_content(attributes.to_python(raw[key]))
            except ValueError:
                raise _BadContent(f"{key} is not valid JSON") from None

        updates: dict[str, Any] = {}
        estimated, missing = [], []
        if want_input:
            try:
                if INPUT_MESSAGES not in raw and SYSTEM_INSTRUCTIONS not in raw:
                    raise _BadContent(f"no {INPUT_MESSAGES} to count (content not captured)")
                updates[INPUT_TOKENS] = chat_format.input_tokens(
                    content(SYSTEM_INSTRUCTIONS), content(INPUT_MESSAGES), content(TOOL_DEFINITIONS), count, fmt)
                estimated.append("input")
            except _BadContent as e:
                missing.append(f"input tokens: {e}")
        if want_output:
            try:
                if OUTPUT_MESSAGES not in raw:
                    raise _BadContent(f"no {OUTPUT_MESSAGES} to count (content not captured)")
                updates[OUTPUT_TOKENS] = chat_format.output_tokens(content(OUTPUT_MESSAGES), count, fmt)
                estimated.append("output")
            except _BadContent as e:
                missing.append(f"output tokens: {e}")
        if estimated:
            updates.update({ESTIMATED: True, ENCODING: family.encoding, ESTIMATED_TYPES: estimated})
        if missing:
            updates[ERROR] = "not estimated: " + "; ".join(missing)
        return updates


factory = Factory(
    type="token_count",
    kind=Kind.PROCESSOR,
    config_class=Config,
    create=TokenCountProcessor,
    signals=frozenset({Signal.TRACES}),
    stability=Stability.ALPHA,
    description="Keeps provider-reported token usage and estimates missing counts offline (OpenAI BPE encodings)",
)
