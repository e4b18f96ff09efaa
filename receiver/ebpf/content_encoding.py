"""Undoing an HTTP body's Content-Encoding, with a cap on the decoded size.

`decode_body(data, content_encoding, max_size, input_complete=True)` promises:
- it never raises on bad input: an unknown coding or corrupt data gives back
  `data` unchanged with an `error` string;
- it never returns more than `max_size` bytes, and stops decoding as soon as the
  cap is passed (`truncated` is then set), so a decompression bomb costs about
  `max_size` bytes of memory (plus one decoder step: ~100 KiB, 640 KiB for zstd)
  and the CPU to produce that much — never the size it would expand to;
- stacked codings ("gzip, br" means gzip was applied first) are undone in reverse
  order; "identity" and empty entries are skipped;
- with `input_complete=False` (the body was cut short: capture cap reached,
  connection closed) the decodable prefix is returned and the missing end is not
  an error.
Codings: gzip / x-gzip (several members back to back allowed; trailing bytes that
do not start a member are ignored, as browsers do); deflate (zlib-wrapped as RFC
9110 says, or raw deflate as some servers send and browsers accept); br (with
brotli >= 1.2, the first that can bound its output; with an older one br is
unsupported); zstd (frames with or without a content size, several frames back
to back; window limited to 8 MiB as RFC 9659 allows decoders to).
Cost: O(len(data) + max_size) time per coding layer; memory: two layers' output
(≤ 2 * max_size) at most.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import brotli
import zstandard

_STEP = 64 * 1024                 # most output asked of a decoder per call
_ZSTD_MAX_WINDOW = 8 * 1024 * 1024
# A zstd block decodes to at most 128 KiB and takes at least 4 bytes (an RLE block),
# so feeding n input bytes yields at most n * 32768 + 128 KiB of output: zstd input
# is fed in steps of room / 32768 bytes (at least 16, so the cap is overshot by at
# most 640 KiB before the excess is cut off).
_ZSTD_MAX_RATIO = 32 * 1024


@dataclass(frozen=True)
class DecodedBody:
    data: bytes
    truncated: bool = False       # decoding stopped at max_size
    error: str | None = None      # data is then the undecoded input


class _CorruptBody(Exception):
    pass


class _Output:
    """Decoded bytes up to a cap: `full` once more than `limit` bytes were offered."""

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0
        self.full = False
        self._pieces: list[bytes] = []

    @property
    def room(self) -> int:
        return self.limit - self.size

    def add(self, data: bytes) -> None:
        if len(data) > self.room:
            data = data[:self.room]
            self.full = True
        self._pieces.append(data)
        self.size += len(data)

    def data(self) -> bytes:
        return b"".join(self._pieces)


def content_codings(content_encoding: str) -> list[str]:
    """The codings of a Content-Encoding value in the order they were applied, lower-cased, identity left out."""
    codings = (c.strip().lower() for c in content_encoding.split(","))
    return [c for c in codings if c and c != "identity"]


def decode_body(data: bytes, content_encoding: str, max_size: int, input_complete: bool = True) -> DecodedBody:
    codings = content_codings(content_encoding)
    if not data:
        return DecodedBody(b"")
    unknown = [c for c in codings if c not in _DECODERS]
    if unknown:
        return DecodedBody(data, error=f"unsupported Content-Encoding {unknown[0]!r}")
    decoded, truncated = data, False
    for coding in reversed(codings):
        out = _Output(max_size)
        try:
            _DECODERS[coding](decoded, out, input_complete and not truncated)
        except (_CorruptBody, zlib.error, brotli.error, zstandard.ZstdError) as exc:
            return DecodedBody(data, error=f"corrupt {coding} data: {exc}")
        decoded, truncated = out.data(), truncated or out.full
    if len(decoded) > max_size:          # identity only: nothing decoded, the input itself is over the cap
        decoded, truncated = decoded[:max_size], True
    return DecodedBody(decoded, truncated)


def _gunzip(data: bytes, out: _Output, input_complete: bool) -> None:
    rest = data
    while True:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        _inflate(inflater, rest, out)
        if out.full:
            return
        if not inflater.eof:
            _missing_end(input_complete, "gzip")
            return
        rest = inflater.unused_data
        if not rest.startswith(b"\x1f\x8b"):
            return


def _inflate_deflate(data: bytes, out: _Output, input_complete: bool) -> None:
    try:
        attempt = _Output(out.limit)
        inflater = zlib.decompressobj(zlib.MAX_WBITS)
        _inflate(inflater, data, attempt)
    except zlib.error as zlib_wrapped_error:
        attempt = _Output(out.limit)
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            _inflate(inflater, data, attempt)
        except zlib.error:
            raise _CorruptBody(f"neither zlib-wrapped nor raw deflate ({zlib_wrapped_error})") from None
    out.add(attempt.data())
    out.full = out.full or attempt.full
    if not out.full and not inflater.eof:
        _missing_end(input_complete, "deflate")


def _inflate(inflater, data: bytes, out: _Output) -> None:
    # Asking for one byte more than fits tells "full" apart from "exactly filled". Output may
    # still be pending inside zlib when all input is consumed: go on while there is progress.
    chunk = inflater.decompress(data, min(out.room + 1, _STEP))
    out.add(chunk)
    while chunk and not out.full and not inflater.eof:
        chunk = inflater.decompress(inflater.unconsumed_tail, min(out.room + 1, _STEP))
        out.add(chunk)


def _unbrotli(data: bytes, out: _Output, input_complete: bool) -> None:
    decompressor = brotli.Decompressor()
    chunk = decompressor.process(data, output_buffer_limit=min(out.room + 1, _STEP))
    out.add(chunk)
    while chunk and not out.full and not decompressor.is_finished():     # the rest of the output, piece by piece
        chunk = decompressor.process(b"", output_buffer_limit=min(out.room + 1, _STEP))
        out.add(chunk)
    if not out.full and not decompressor.is_finished():
        _missing_end(input_complete, "br")


def _unzstd(data: bytes, out: _Output, input_complete: bool) -> None:
    decompressor = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
    rest = data
    while rest and not out.full:
        frame = decompressor.decompressobj()
        position = 0
        while position < len(rest) and not frame.eof and not out.full:
            step = max(16, out.room // _ZSTD_MAX_RATIO)
            out.add(frame.decompress(rest[position:position + step]))
            position += step
        if out.full:
            return
        if not frame.eof:
            _missing_end(input_complete, "zstd")
            return
        rest = frame.unused_data + rest[position:]


def _missing_end(input_complete: bool, coding: str) -> None:
    if input_complete:
        raise _CorruptBody(f"the {coding} stream ends before its end marker")


def _brotli_bounds_its_output() -> bool:
    """brotli >= 1.2 takes output_buffer_limit; an older one could not stop a bomb, so br is then not decoded."""
    try:
        brotli.Decompressor().process(b"", output_buffer_limit=1)
    except TypeError:
        return False
    return True


_DECODERS = {
    "gzip": _gunzip,
    "x-gzip": _gunzip,
    "deflate": _inflate_deflate,
    "zstd": _unzstd,
}
if _brotli_bounds_its_output():
    _DECODERS["br"] = _unbrotli
