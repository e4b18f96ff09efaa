"""Content-Encoding decoding of captured bodies: every coding an LLM API or proxy may
use, encoded by the real libraries, stacked codings, bombs that must stop at the
cap, and bad input that must come back unchanged with a clear error."""

from __future__ import annotations

import gzip
import random
import time
import tracemalloc
import zlib

import brotli
import pytest
import zstandard
from hypothesis import given, settings, strategies as st

from llmtap.receiver.ebpf.content_encoding import content_codings, decode_body

SSE = b"".join(b'data: {"type":"content_block_delta","delta":{"text":"token %d"}}\n\n' % i for i in range(300))
MiB = 1024 * 1024


def raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def zstd_streamed(data: bytes) -> bytes:
    """A zstd frame without a content size, flushed block by block as a streaming server writes it."""
    compressor = zstandard.ZstdCompressor().compressobj()
    out = b""
    for i in range(0, len(data), 1000):
        out += compressor.compress(data[i:i + 1000]) + compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    return out + compressor.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,                      # zlib-wrapped, as RFC 9110 says
    "deflate (raw)": raw_deflate,                  # what some servers send and browsers accept
    "br": lambda data: brotli.compress(data, quality=5),     # a quality servers use for dynamic content
    "zstd": zstandard.ZstdCompressor().compress,   # with content size
    "zstd (streamed)": zstd_streamed,
}


def coding_of(label: str) -> str:
    return label.split(" ")[0]


@pytest.mark.parametrize("label", ENCODERS)
def test_each_coding_decodes_to_the_original_body(label):
    decoded = decode_body(ENCODERS[label](SSE), coding_of(label), 16 * MiB)
    assert decoded.data == SSE
    assert not decoded.truncated and decoded.error is None


@pytest.mark.parametrize("label", ENCODERS)
def test_each_coding_decodes_megabytes_well_past_one_decoder_step(label):
    body = SSE * 200 + random.Random(2).randbytes(300_000)       # ~4 MiB that compress well, then noise
    decoded = decode_body(ENCODERS[label](body), coding_of(label), 16 * MiB)
    assert decoded.error is None and not decoded.truncated
    assert decoded.data == body


@pytest.mark.parametrize("label", ENCODERS)
def test_each_coding_stops_at_the_cap_and_says_so(label):
    decoded = decode_body(ENCODERS[label](SSE), coding_of(label), 1000)
    assert decoded.data == SSE[:1000]
    assert decoded.truncated and decoded.error is None


@pytest.mark.parametrize("label", ENCODERS)
def test_output_of_exactly_the_cap_is_not_truncated(label):
    decoded = decode_body(ENCODERS[label](SSE), coding_of(label), len(SSE))
    assert decoded.data == SSE and not decoded.truncated


@pytest.mark.parametrize("label", ENCODERS)
def test_a_body_cut_short_is_an_error_unless_the_caller_knows_it_is_incomplete(label):
    body = SSE + random.Random(7).randbytes(300_000)    # several zstd blocks, which decode whole
    encoded = ENCODERS[label](body)
    cut = encoded[:len(encoded) // 2]
    complete = decode_body(cut, coding_of(label), 16 * MiB)
    assert complete.data == cut and "ends before its end marker" in complete.error
    partial = decode_body(cut, coding_of(label), 16 * MiB, input_complete=False)
    assert partial.error is None and body.startswith(partial.data) and len(partial.data) > len(SSE)


@pytest.mark.parametrize("content_encoding, encode", [
    ("gzip, br", lambda d: brotli.compress(gzip.compress(d))),
    ("deflate, zstd", lambda d: zstandard.ZstdCompressor().compress(zlib.compress(d))),
    ("br,gzip", lambda d: gzip.compress(brotli.compress(d))),
    ("identity, gzip", gzip.compress),
    ("GZIP ", gzip.compress),
    ("", lambda d: d),
    ("identity", lambda d: d),
])
def test_stacked_codings_are_undone_last_applied_first(content_encoding, encode):
    decoded = decode_body(encode(SSE), content_encoding, 16 * MiB)
    assert decoded.data == SSE and decoded.error is None


def test_stacked_codings_respect_the_cap():
    decoded = decode_body(brotli.compress(gzip.compress(SSE)), "gzip, br", 500)
    assert decoded.data == SSE[:500] and decoded.truncated and decoded.error is None


def test_gzip_members_back_to_back_decode_as_one_body_and_trailing_junk_is_ignored():
    body = gzip.compress(SSE[:5000]) + gzip.compress(SSE[5000:]) + b"\0\0\0\0"
    assert decode_body(body, "gzip", 16 * MiB).data == SSE


def test_zstd_frames_back_to_back_decode_as_one_body():
    body = zstandard.ZstdCompressor().compress(SSE[:5000]) + zstd_streamed(SSE[5000:])
    assert decode_body(body, "zstd", 16 * MiB).data == SSE


def test_identity_body_over_the_cap_is_cut():
    decoded = decode_body(SSE, "identity", 10)
    assert decoded.data == SSE[:10] and decoded.truncated


def test_an_empty_body_is_empty_whatever_its_coding():
    # HEAD, 204 and 304 responses may carry Content-Encoding without a body.
    for coding in ("gzip", "deflate", "br", "zstd", "compress"):
        assert decode_body(b"", coding, 100).data == b""
        assert decode_body(b"", coding, 100).error is None


def test_an_unknown_coding_keeps_the_bytes_and_names_the_coding():
    body = b"\x1f\x9d\x90compressed"
    decoded = decode_body(body, "compress", 16 * MiB)
    assert decoded.data == body and decoded.error == "unsupported Content-Encoding 'compress'"
    assert decode_body(body, "gzip, snappy", 16 * MiB).error == "unsupported Content-Encoding 'snappy'"


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_corrupt_data_keeps_the_bytes_and_reports_an_error(coding):
    body = b"this is not compressed at all, " * 10
    decoded = decode_body(body, coding, 16 * MiB)
    assert decoded.data == body
    assert decoded.error.startswith(f"corrupt {coding} data")


def test_corruption_in_the_middle_is_an_error_too():
    encoded = bytearray(gzip.compress(random.Random(1).randbytes(50_000)))
    encoded[len(encoded) // 2] ^= 0xFF
    decoded = decode_body(bytes(encoded), "gzip", 16 * MiB)
    assert decoded.data == bytes(encoded) and decoded.error is not None


def test_invalid_utf8_survives_as_bytes():
    body = b"\xff\xfe caf\xc3 \x80\x00"
    assert decode_body(gzip.compress(body), "gzip", 100).data == body


def bomb(coding: str) -> bytes:
    """About 1 GiB of zeros (256 MiB for br, whose encoder is slowest), a few hundred KiB on the wire."""
    if coding == "gzip":
        member = gzip.compress(b"\0" * (64 * MiB), compresslevel=1)
        return member * 16
    if coding == "br":
        return brotli.compress(b"\0" * (256 * MiB), quality=0)
    frame = zstandard.ZstdCompressor(level=1).compress(b"\0" * (64 * MiB))
    return frame * 16


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_a_decompression_bomb_costs_only_the_cap(coding):
    body = bomb(coding)
    cap = 4 * MiB
    tracemalloc.start()
    began = time.monotonic()
    decoded = decode_body(body, coding, cap)
    elapsed = time.monotonic() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert decoded.truncated and decoded.error is None
    assert len(decoded.data) == cap and decoded.data == b"\0" * cap
    assert peak < 3 * cap + len(body)
    assert elapsed < 2.0


def test_content_codings_lists_codings_in_the_order_applied():
    assert content_codings("gzip, br") == ["gzip", "br"]
    assert content_codings(" Identity ,GZIP,,") == ["gzip"]


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=5000), st.sampled_from(sorted(ENCODERS)), st.integers(min_value=0, max_value=6000))
def test_any_body_any_coding_any_cap(body, label, cap):
    decoded = decode_body(ENCODERS[label](body), coding_of(label), cap)
    assert decoded.error is None
    assert decoded.data == body[:cap]
    assert decoded.truncated == (len(body) > cap)
