"""Reading an OTLP/HTTP request body under a size cap, decompressing it on the way.

`BodyDecoder` is fed the body in whatever pieces the socket delivered and never
does I/O itself. It promises that a body whose bytes on the wire, or whose
decompressed bytes, exceed `limit` is rejected with BodyTooLarge as soon as the
excess is seen, so a zip bomb costs at most `limit + 1` bytes of memory and the
CPU to inflate that much — never the size it would expand to. Memory held: the
decompressed output so far (≤ limit) plus one input piece.
"""

from __future__ import annotations

import zlib

from aiohttp import web

# Content-Encoding → zlib `wbits`: gzip framing, or zlib framing (what RFC 9110 calls deflate).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
SUPPORTED_ENCODINGS = ("gzip", "deflate", "identity")

_READ_PIECE = 64 * 1024


class BodyTooLarge(Exception):
    """413: the body is over max_request_body_size."""


class MalformedBody(Exception):
    """400: the body cannot be decompressed."""


class UnsupportedEncoding(Exception):
    """415: a Content-Encoding we do not decode."""


class BodyDecoder:
    def __init__(self, content_encoding: str, limit: int):
        encoding = content_encoding.strip().lower() or "identity"
        if encoding != "identity" and encoding not in _WBITS:
            raise UnsupportedEncoding(
                f"unsupported Content-Encoding {content_encoding!r}, supported: {', '.join(SUPPORTED_ENCODINGS)}")
        self.encoding = encoding
        self.limit = limit
        self._wire_size = 0
        self._out: list[bytes] = []
        self._out_size = 0
        self._inflater = zlib.decompressobj(_WBITS[encoding]) if encoding in _WBITS else None

    def feed(self, piece: bytes) -> None:
        self._wire_size += len(piece)
        if self._wire_size > self.limit:
            raise BodyTooLarge(f"request body is larger than max_request_body_size ({self.limit} bytes)")
        if self._inflater is None:
            self._keep(piece)
        else:
            self._inflate(piece)

    def finish(self) -> bytes:
        if self._inflater is not None and not self._inflater.eof:
            raise MalformedBody(f"{self.encoding} request body is truncated")
        return b"".join(self._out)

    def _keep(self, data: bytes) -> None:
        self._out_size += len(data)
        if self._out_size > self.limit:
            raise BodyTooLarge(
                f"decompressed request body is larger than max_request_body_size ({self.limit} bytes)")
        self._out.append(data)

    def _inflate(self, data: bytes) -> None:
        assert self._inflater is not None
        try:
            while data:
                if self._inflater.eof:
                    if self.encoding == "deflate":
                        raise MalformedBody("data after the end of the deflate request body")
                    # A gzip body may be several gzip members back to back.
                    self._inflater = zlib.decompressobj(_WBITS[self.encoding])
                # Ask for one byte more than still fits, so going over is seen without inflating further.
                room = self.limit - self._out_size + 1
                self._keep(self._inflater.decompress(data, room))
                data = self._inflater.unused_data if self._inflater.eof else self._inflater.unconsumed_tail
        except zlib.error as e:
            raise MalformedBody(f"cannot decompress {self.encoding} request body: {e}") from None


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole decoded body of `request`, or BodyTooLarge / MalformedBody / UnsupportedEncoding."""
    decoder = BodyDecoder(request.headers.get("Content-Encoding", ""), limit)
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"request body is larger than max_request_body_size ({limit} bytes)")
    async for piece in request.content.iter_chunked(_READ_PIECE):
        decoder.feed(piece)
    return decoder.finish()
