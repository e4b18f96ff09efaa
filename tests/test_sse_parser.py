"""The sans-IO stream parsers: Server-Sent Events exactly as the WHATWG HTML standard
interprets an event stream (9.2.6), NDJSON, and Gemini's streamed JSON array — and the
same records whatever pieces the bytes arrive in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmtap.processors.sse_reassembly.eventstream import JsonArrayParser, NdjsonParser, ServerSentEvent, SseParser


def parse_sse(pieces: list[bytes]) -> tuple[list[ServerSentEvent], ServerSentEvent | None]:
    parser = SseParser()
    events = [e for piece in pieces for e in parser.feed(piece)]
    return events, parser.close()


def ev(data: str, event: str = "message", id: str = "", retry: int | None = None) -> ServerSentEvent:
    return ServerSentEvent(data, event, id, retry)


# (name, stream, dispatched events, what close() reports as cut off)
SPEC_TABLE = [
    # The spec's own examples.
    ("multi-line data joined with LF", b"data: YHOO\ndata: +2\ndata: 10\n\n", [ev("YHOO\n+2\n10")], None),
    ("comment, id, a field without colon",
     b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n\n",
     [ev("first event", id="1"), ev("second event", id=""), ev(" third event", id="")], None),
    ("data without colon is an empty value; the last block is never dispatched",
     b"data\n\ndata\ndata\n\ndata:", [ev(""), ev("\n")], ev("")),
    ("one leading space stripped, or none", b"data:test\n\ndata: test\n\n", [ev("test"), ev("test")], None),
    ("event types", b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
     [ev("73857293", "add"), ev("2153", "remove"), ev("113411", "add")], None),
    # The interpretation rules, one by one.
    ("the event type resets after each dispatch", b"event: foo\ndata: a\n\ndata: b\n\n",
     [ev("a", "foo"), ev("b")], None),
    ("no data: not dispatched, and the event type is reset", b"event: ping\n\ndata: x\n\n", [ev("x")], None),
    ("CR line ends", b"data: a\rdata: b\r\r", [ev("a\nb")], None),
    ("CRLF line ends", b"data: a\r\ndata: b\r\n\r\n", [ev("a\nb")], None),
    ("mixed line ends", b"data: a\r\ndata: b\rdata: c\n\n", [ev("a\nb\nc")], None),
    ("a leading BOM is ignored", "\ufeffdata: x\n\n".encode(), [ev("x")], None),
    ("only one BOM: a second one is part of the field name", "\ufeff\ufeffdata: x\n\n".encode(), [], None),
    ("only the first space is stripped", b"data:  two\n\n", [ev(" two")], None),
    ("colons after the first belong to the value", b"data: a:b: c\n\n", [ev("a:b: c")], None),
    ("unknown fields are ignored", b"foo: bar\ndata: x\nDATA: y\n\n", [ev("x")], None),
    ("field names are case-sensitive", b"Data: x\nEvent: y\n\n", [], None),
    ("an id holding NUL is ignored", b"id: 7\ndata: a\n\nid: 8\x009\ndata: b\n\n", [ev("a", id="7"), ev("b", id="7")],
     None),
    ("the last event id persists", b"id: 7\ndata: a\n\ndata: b\n\nid\ndata: c\n\n",
     [ev("a", id="7"), ev("b", id="7"), ev("c", id="")], None),
    ("retry takes ASCII digits only",
     b"retry: 3000\ndata: a\n\nretry: 3s\ndata: b\n\nretry: -1\nretry: 25\ndata: c\n\n",
     [ev("a", retry=3000), ev("b", retry=3000), ev("c", retry=25)], None),
    ("only the final LF of the data buffer is removed", b"data: a\ndata:\n\n", [ev("a\n")], None),
    ("an empty data line alone is an event with empty data", b"data:\n\n", [ev("")], None),
    ("comments anywhere", b":hello\ndata: a\n: keep-alive\ndata: b\n\n:bye\n", [ev("a\nb")], None),
    ("invalid UTF-8 becomes U+FFFD", b"data: caf\xe9 \xf0\x9f\n\n", [ev("caf\ufffd \ufffd")], None),
    ("no blank line at the end: not dispatched, reported by close()", b"data: x\n", [], ev("x")),
    ("an unterminated last line counts for close()", b"event: e\ndata: x", [], ev("x", "e")),
    ("blank lines alone dispatch nothing", b"\n\n\r\n\r\r", [], None),
    ("non-ASCII field values", "event: größe\ndata: 日本語 ✓ 🚀\n\n".encode(), [ev("日本語 ✓ 🚀", "größe")],
     None),
]


@pytest.mark.parametrize("name, stream, events, pending", SPEC_TABLE, ids=[row[0] for row in SPEC_TABLE])
def test_whatwg_interpretation(name, stream, events, pending):
    assert parse_sse([stream]) == (events, pending)


@pytest.mark.parametrize("name, stream, events, pending", SPEC_TABLE, ids=[row[0] for row in SPEC_TABLE])
def test_every_split_gives_the_same_events(name, stream, events, pending):
    for cut in range(1, len(stream)):
        assert parse_sse([stream[:cut], stream[cut:]]) == (events, pending), f"split at {cut}"
    assert parse_sse([stream[i:i + 1] for i in range(len(stream))]) == (events, pending), "byte by byte"


def test_cr_ending_one_piece_and_lf_starting_the_next_are_one_line_end():
    # Were the LF taken for a line of its own, "a" would be dispatched alone.
    assert parse_sse([b"data: a\r", b"\ndata: b\r\n\r\n"]) == ([ev("a\nb")], None)
    assert parse_sse([b"data: a\r", b"\n", b"\r", b"\n"]) == ([ev("a")], None)


def test_a_bom_split_across_pieces_is_still_ignored():
    bom = "\ufeff".encode()
    assert parse_sse([bom[:1], bom[1:2], bom[2:] + b"data: x\n\n"]) == ([ev("x")], None)
    # Bytes that only start like a BOM are data.
    assert parse_sse([b"\xef", b"\xbbdata: x\n\n"])[0] == []
    assert parse_sse([b"\xef"]) == ([], None)


def test_close_reports_whether_the_stream_ended_between_events():
    parser = SseParser()
    parser.feed(b"data: a\n\n")
    assert parser.close() is None and parser.ended_cleanly
    parser = SseParser()
    parser.feed(b"data: a\n\nevent: b\n")
    assert parser.close() is None and not parser.ended_cleanly  # a half-sent event without data
    parser = SseParser()
    parser.feed(b"data: a\n\n: a comment without its line end")
    assert parser.close() is None and not parser.ended_cleanly


def test_a_long_line_in_small_pieces_is_collected_once():
    # 1 MiB in 16-byte pieces: were the growing line copied on every piece this would
    # move ~32 GiB; appended, it moves each byte once.
    payload = b"x" * (1 << 20)
    parser = SseParser()
    stream = b"data: " + payload + b"\n\n"
    events = [e for i in range(0, len(stream), 16) for e in parser.feed(stream[i:i + 16])]
    assert [len(e.data) for e in events] == [len(payload)]


SSE_ALPHABET = [b"data", b"event", b"id", b"retry", b":", b" ", b"\r", b"\n", b"\r\n", b"x", b"7", b"\xc3\xa9",
                b"\xf0\x9f\x9a\x80", b"\xff", b"\x00", "\ufeff".encode()]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(SSE_ALPHABET), max_size=60).map(b"".join), st.data())
def test_any_stream_split_anywhere_parses_the_same(stream, data):
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
    assert parse_sse(pieces) == parse_sse([stream])


# --- NDJSON ------------------------------------------------------------------------------

def parse_ndjson(pieces: list[bytes]) -> tuple[list[str], str | None]:
    parser = NdjsonParser()
    lines = [line for piece in pieces for line in parser.feed(piece)]
    return lines, parser.close()


NDJSON_TABLE = [
    ("one record per line", b'{"a":1}\n{"b":2}\n', ['{"a":1}', '{"b":2}'], None),
    ("CRLF accepted", b'{"a":1}\r\n{"b":2}\r\n', ['{"a":1}', '{"b":2}'], None),
    ("blank lines skipped", b'\n{"a":1}\n\n  \n{"b":2}\n', ['{"a":1}', '{"b":2}'], None),
    ("a last line without LF is left for close()", b'{"a":1}\n{"b":', ['{"a":1}'], '{"b":'),
    ("UTF-8 text", '{"t":"日本語 🚀"}\n'.encode(), ['{"t":"日本語 🚀"}'], None),
]


@pytest.mark.parametrize("name, stream, lines, rest", NDJSON_TABLE, ids=[row[0] for row in NDJSON_TABLE])
def test_ndjson(name, stream, lines, rest):
    assert parse_ndjson([stream]) == (lines, rest)
    for cut in range(1, len(stream)):
        assert parse_ndjson([stream[:cut], stream[cut:]]) == (lines, rest), f"split at {cut}"


# --- Gemini's JSON array -----------------------------------------------------------------

def parse_array(pieces: list[bytes]) -> tuple[list[str], str | None, JsonArrayParser]:
    parser = JsonArrayParser()
    elements = [e for piece in pieces for e in parser.feed(piece)]
    return elements, parser.close(), parser


ARRAY_TABLE = [
    ("pretty-printed elements separated by ,CRLF", b'[{\n  "a": 1\n}\n,\r\n{\n  "b": [2, 3]\n}\n]',
     ['{\n  "a": 1\n}', '{\n  "b": [2, 3]\n}'], None, True),
    ("brackets and quotes inside strings", b'[{"t": "a]}\\"[{"}, {"u": "\\\\"}]',
     ['{"t": "a]}\\"[{"}', '{"u": "\\\\"}'], None, True),
    ("nested arrays and objects", b'[{"a": [{"b": [[]]}]}]', ['{"a": [{"b": [[]]}]}'], None, True),
    ("an empty array", b"[]", [], None, True),
    ("cut inside an element", b'[{"a": 1}, {"b": "x', ['{"a": 1}'], '{"b": "x', False),
    ("cut before the closing bracket", b'[{"a": 1}', ['{"a": 1}'], None, False),
    ("UTF-8 inside strings", '[{"t": "日本語 🚀"}]'.encode(), ['{"t": "日本語 🚀"}'], None, True),
]


@pytest.mark.parametrize("name, stream, elements, rest, closed", ARRAY_TABLE, ids=[row[0] for row in ARRAY_TABLE])
def test_json_array(name, stream, elements, rest, closed):
    got, got_rest, parser = parse_array([stream])
    assert (got, got_rest, parser.closed, parser.ended_cleanly) == (elements, rest, closed, closed)
    for cut in range(1, len(stream)):
        got, got_rest, parser = parse_array([stream[:cut], stream[cut:]])
        assert (got, got_rest, parser.closed) == (elements, rest, closed), f"split at {cut}"
    got, got_rest, _ = parse_array([stream[i:i + 1] for i in range(len(stream))])
    assert (got, got_rest) == (elements, rest), "byte by byte"


def test_json_array_notes_bytes_outside_the_array():
    _, _, parser = parse_array([b'[{"a": 1}]\n'])
    assert not parser.stray_bytes
    _, _, parser = parse_array([b'[{"a": 1}] trailing'])
    assert parser.stray_bytes
    elements, _, parser = parse_array([b'<html>[{"a": 1}]'])
    assert parser.stray_bytes and elements == ['{"a": 1}']
