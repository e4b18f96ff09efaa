"""Which tokenizer and chat framing a model name stands for: a table of name prefixes.

OpenAI's models tokenize with the encoding tiktoken assigns them (tiktoken/model.py):
o200k_base for GPT-4o, GPT-4.1, GPT-4.5, the o-series and GPT-5, cl100k_base for GPT-4,
GPT-3.5-turbo and the embedding models; gpt-oss uses o200k_harmony (o200k_base's vocabulary
plus the harmony format's special tokens). Other vendors' tokenizers are not tiktoken
encodings, so their counts are approximations, marked by the encoding named on the span:

  - Llama 3 and later: its 128k vocabulary is cl100k_base's 100k BPE merges plus 28k tokens
    added for other languages, with the same split pattern: cl100k_base, exact for most
    English text, over-counting other languages.
  - Qwen (Qwen2 and later, QwQ): a byte-level BPE built from cl100k_base with more CJK tokens:
    cl100k_base, close for English, over-counting Chinese.
  - Mistral (Tekken, Nemo and later), DeepSeek (V2 and later): byte-level BPEs of 128-131k
    tokens of their own: cl100k_base, the nearest in size and training mix.
  - Gemini and Gemma: a 256k SentencePiece vocabulary: o200k_base, the nearest in size.
  - Claude: Anthropic publishes no tokenizer for Claude 3 and later (only a counting API):
    cl100k_base, which reads English at about the same density; expect Claude's own counts
    to run higher (more so for code and non-English text).
The OpenAI chat framing is used for them too: theirs is not published either.

Names are matched lowercased by the longest table prefix, at the start of the name or after
a `/`, `.` or `:` (so routed and deployed names match: `openai/gpt-4o`,
`us.anthropic.claude-sonnet-4`, `ft:gpt-4o-mini:org::id`, `models/gemini-2.5-pro`).
Cost: a scan of the table (~50 prefixes) per distinct name; results are cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from llmtap.processors.token_count.chat_format import CHAT, CHATML_0301, PLAIN, REASONING, ChatFormat

O200K, CL100K, HARMONY = "o200k_base", "cl100k_base", "o200k_harmony"


@dataclass(frozen=True)
class ModelFamily:
    prefix: str
    encoding: str
    chat: ChatFormat = CHAT


_OPENAI = [
    ModelFamily("gpt-4o", O200K), ModelFamily("chatgpt-4o", O200K), ModelFamily("gpt-4.1", O200K),
    ModelFamily("gpt-4.5", O200K), ModelFamily("gpt-5", O200K, REASONING), ModelFamily("o1", O200K, REASONING),
    ModelFamily("o3", O200K, REASONING), ModelFamily("o4", O200K, REASONING),
    ModelFamily("codex-mini", O200K, REASONING), ModelFamily("computer-use-preview", O200K),
    ModelFamily("gpt-oss", HARMONY, REASONING),
    ModelFamily("gpt-4", CL100K), ModelFamily("gpt-3.5-turbo", CL100K), ModelFamily("gpt-35-turbo", CL100K),
    ModelFamily("gpt-3.5-turbo-0301", CL100K, CHATML_0301), ModelFamily("gpt-35-turbo-0301", CL100K, CHATML_0301),
    ModelFamily("gpt-3.5-turbo-instruct", CL100K, PLAIN), ModelFamily("davinci-002", CL100K, PLAIN),
    ModelFamily("babbage-002", CL100K, PLAIN),
    ModelFamily("text-embedding-3", CL100K, PLAIN), ModelFamily("text-embedding-ada-002", CL100K, PLAIN),
]
_OTHERS = [ModelFamily(prefix, encoding) for prefix, encoding in (
    ("claude", CL100K),
    ("llama", CL100K), ("meta-llama", CL100K),
    ("qwen", CL100K), ("qwq", CL100K),
    ("mistral", CL100K), ("mixtral", CL100K), ("codestral", CL100K), ("ministral", CL100K),
    ("pixtral", CL100K), ("magistral", CL100K), ("devstral", CL100K), ("open-mistral", CL100K),
    ("deepseek", CL100K),
    ("gemini", O200K), ("gemma", O200K),
)]
BUILTIN_FAMILIES: tuple[ModelFamily, ...] = tuple(_OPENAI + _OTHERS)


class ModelTable:
    """Built-in families plus user overrides (prefix → encoding), overrides first."""

    def __init__(self, overrides: dict[str, str] | None = None, default_encoding: str = O200K):
        self._overrides = tuple(sorted(((p.lower(), e) for p, e in (overrides or {}).items()),
                                       key=lambda item: -len(item[0])))
        self._builtin = tuple(sorted(BUILTIN_FAMILIES, key=lambda f: -len(f.prefix)))
        self._default = ModelFamily("", default_encoding)
        self.lookup = lru_cache(maxsize=1024)(self._lookup)

    def _lookup(self, model: str | None) -> ModelFamily:
        """The family of a model name; the default family for an unknown or missing name."""
        if not model:
            return self._default
        name = model.strip().lower()
        starts = [0] + [i + 1 for i, ch in enumerate(name) if ch in "/.:"]
        for start in starts:
            candidate = name[start:]
            for prefix, encoding in self._overrides:
                if candidate.startswith(prefix):
                    builtin = self._builtin_family(candidate)  # its chat framing still holds
                    return ModelFamily(prefix, encoding, builtin.chat if builtin else CHAT)
            builtin = self._builtin_family(candidate)
            if builtin is not None:
                return builtin
        return self._default

    def _builtin_family(self, candidate: str) -> ModelFamily | None:
        for family in self._builtin:
            if candidate.startswith(family.prefix):
                return family
        return None
