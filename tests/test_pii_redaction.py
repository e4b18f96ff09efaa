"""pii_redaction: what leaves the node holds no personal data or secret the detectors know.

The detector is checked on the entity definitions it takes from presidio (checksums, context)
and on the secret formats it adds; the processor on real GenAI span shapes (v1.41 content
attributes, tool calls and results, span events, log bodies), its operators, its config errors,
failing closed, properties that must hold for any input, and running offline.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from presidio_analyzer import EntityRecognizer, RecognizerResult

from llmtap import attributes
from llmtap.component import Signal
from llmtap.configtypes import decode_config
from llmtap.processors import pii_redaction
from llmtap.processors.pii_redaction import Config
from llmtap.processors.pii_redaction.detect import Detector
from llmtap.registry import Registry
from otlpdata import any_value
from processor_support import _Host, build_chain

EMAIL = "jane.doe@example.com"
CARD = "4111 1111 1111 1111"  # Luhn-valid (Visa's test number)
BAD_CARD = "4111 1111 1111 1112"  # same shape, Luhn fails
IBAN = "DE89 3704 0044 0532 0130 00"
BAD_IBAN = "DE88 3704 0044 0532 0130 00"  # check digits wrong
SSN = "536-90-4399"
PHONE = "(212) 555-0143"
OPENAI_KEY = "sk-proj-Xq3vT9bK2mN7pL4rS8wY1zA6cE0fH5jG"
ANTHROPIC_KEY = "sk-ant-api03-" + "Zm9vYmFyYmF6cXV4" * 6 + "AA"
AWS_ID, AWS_SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


# ---- running the processor as the service builds it ---------------------------------------------

def _chain(signal: Signal, config: dict):
    return build_chain(signal, ("pii_redaction", config), registry=Registry([pii_redaction.factory]))


def _run(signal: Signal, request, config: dict, chain=None):
    chain, sink = chain or _chain(signal, config)

    async def go():
        await chain[0].start(_Host())
        await chain[0].consume(signal, request)

    asyncio.run(go())
    [out] = sink.received[-1:]
    return out


def genai_span(events: list[dict] | None = None, **attrs) -> Span:
    """A v1.41 GenAI span as genai_semconv hands it on (content attributes as JSON strings)."""
    span = Span(name="chat gpt-4o", kind=Span.SPAN_KIND_CLIENT, trace_id=b"\x03" * 16, span_id=b"\x04" * 8)
    values = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o"}
    for key, value in attrs.items():
        key = key.replace("__", ".")
        values[key] = json.dumps(value) if isinstance(value, list) else value
    attributes.add(span.attributes, values)
    for event in events or []:
        attributes.add(span.events.add(name="gen_ai.client.inference.operation.details").attributes, event)
    return span


def redact_spans(spans: list[Span], chain=None, **config) -> list[Span]:
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.extend(spans)
    out = _run(Signal.TRACES, request, config, chain)
    return list(out.resource_spans[0].scope_spans[0].spans)


def redacted(span: Span, **config) -> dict:
    [out] = redact_spans([span], **config)
    return attributes.as_dict(out.attributes)


def user(text: str) -> dict:
    return {"role": "user", "parts": [{"type": "text", "content": text}]}


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


def found(detector: Detector, text: str) -> list[tuple[str, str]]:
    return [(f.entity_type, text[f.start:f.end]) for f in detector.analyze(text)]


# ---- the detector: presidio's definitions ---------------------------------------------------------

def test_presidio_entities_with_their_checksums(detector):
    text = (f"Email {EMAIL}, call {PHONE}. Card {CARD} (not {BAD_CARD}). IBAN {IBAN}, not {BAD_IBAN}. "
            f"SSN {SSN}. Server 10.0.0.12, wallet 1BoatSLRHtKNngkdXEeobR76b53LETtpyT.")
    assert found(detector, text) == [
        ("EMAIL_ADDRESS", EMAIL), ("PHONE_NUMBER", PHONE), ("CREDIT_CARD", CARD), ("IBAN_CODE", IBAN),
        ("US_SSN", SSN), ("IP_ADDRESS", "10.0.0.12"), ("CRYPTO", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT")]


def test_weak_patterns_need_a_context_word_before_them_or_in_the_json_key(detector):
    assert found(detector, "order 912345678 shipped") == []  # a bare 9-digit number
    assert found(detector, "my passport is 912345678") == [("US_PASSPORT", "912345678")]
    text = "912345678"
    assert [f.entity_type for f in detector.analyze(text, context=("passport_number",))] == ["US_PASSPORT"]


def test_an_email_in_a_url_query_is_the_address_alone(detector):
    url = "https://api.example.com/v1/users?email=bob@corp.io&page=2"
    assert found(detector, url) == [("EMAIL_ADDRESS", "bob@corp.io")]


def test_text_without_pii_has_no_findings(detector):
    text = ("Version 3.11.7 shipped on day 12; revenue grew 12% to $4.5 million. "
            "def f(x): return x * 1000 + 42  # see RFC 9110 section 15.5")
    assert found(detector, text) == []


def test_entities_presidio_leaves_off_for_english_and_ours_can_be_enabled():
    d = Detector(Config(enable=["UK_NINO", "DATE_TIME"], disable=["IP_ADDRESS"]))
    assert found(d, "NI number AB123456C, born 1985-03-14, host 10.0.0.1") == [
        ("UK_NINO", "AB123456C"), ("DATE_TIME", "1985-03-14")]


@pytest.mark.parametrize("text, expected", [
    # The longest wins: the whole +country number over the part of it that passes Luhn / NHS's mod 11.
    ("Phone: +5511961234292", [("PHONE_NUMBER", "+5511961234292")]),
    ("GP surgery +44 121 234 6440", [("PHONE_NUMBER", "+44 121 234 6440")]),
    # Same span: a context word names it, though it passes NHS's checksum too ...
    ("My phone is 312 345 8156.", [("PHONE_NUMBER", "312 345 8156")]),
    # ... and with context on both sides ("number" is a phone word), the checksum that passed.
    ("Re: Daria Otto, NHS number 542 553 3772, DOB 1980", [("UK_NHS", "542 553 3772")]),
    # A table column's header is its cells' context (CSV, psql).
    ("name,nhs_number,gp,phone\nAnn Lee,603-846-6754,Dr Bird,+441212341644",
     [("UK_NHS", "603-846-6754"), ("PHONE_NUMBER", "+441212341644")]),
    (" id | name | phone\n----+------+-------\n 11 | Chad | 010 123 8096\n(1 row)",
     [("PHONE_NUMBER", "010 123 8096")]),
    # Mastercard's 2-series (2221-2720), which presidio's card pattern lacks; Luhn still decides.
    ("on my card 2391 6375 5019 4122.", [("CREDIT_CARD", "2391 6375 5019 4122")]),
    ("on my card 2391 6375 5019 4123.", []),
])
def test_one_name_for_a_number_two_recognizers_claim(detector, text, expected):
    assert found(detector, text) == expected


# ---- the detector: secrets presidio does not know ------------------------------------------------

@pytest.mark.parametrize("entity, text, secret", [
    ("OPENAI_API_KEY", f"OPENAI_API_KEY={OPENAI_KEY}", OPENAI_KEY),
    ("OPENAI_API_KEY", "key: sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"),
    ("ANTHROPIC_API_KEY", f"x-api-key: {ANTHROPIC_KEY}", ANTHROPIC_KEY),
    ("GOOGLE_API_KEY", "?key=AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY"),
    ("AWS_ACCESS_KEY_ID", f"aws_access_key_id = {AWS_ID}", AWS_ID),
    ("GITHUB_TOKEN", "token ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"),
    ("GITHUB_TOKEN", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
     "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv"),
    ("SLACK_TOKEN", "SLACK_BOT_TOKEN=xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
     "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("SLACK_WEBHOOK_URL", "post to https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX now",
     "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX"),
    ("STRIPE_API_KEY", "stripe.api_key = 'sk_live_4eC39HqLyjWDarjtT1zdp7dc'", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("STRIPE_API_KEY", "rk_live_51H8xYzAbCdEfGhIjKlMnOp", "rk_live_51H8xYzAbCdEfGhIjKlMnOp"),
    ("JWT", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"),
    ("BEARER_TOKEN", "Authorization: Bearer abcdefghijklmnop1234.", "abcdefghijklmnop1234"),
    ("PASSWORD", "DATABASE_URL=postgres://app:s3cr3t-Pa55@db.internal:5432/app", "s3cr3t-Pa55"),
    ("PASSWORD", "redis://:hunter22@cache:6379/0", "hunter22"),
    ("PASSWORD", "Server=db1;Database=app;User Id=sa;Password=Tr0ub4dor&3x;", "Tr0ub4dor"),
    ("PASSWORD", "PGPASSWORD=Xn9nSr9WD9b0 psql -h db", "Xn9nSr9WD9b0"),
    ("PASSWORD", "  db_password: 'inNfB1qCg9'", "inNfB1qCg9"),
    ("PASSWORD", '"env": [{"name": "DB_PASSWORD", "value": "42PWSlGRUDFjyfJ4"}]', "42PWSlGRUDFjyfJ4"),
    ("PASSWORD", "$ mysql -u root -pHunter2pw app", "Hunter2pw"),
    ("PASSWORD", "curl -u admin:Tr0ub4dor3 https://ci.internal/api", "Tr0ub4dor3"),
    ("PASSWORD", "redis-cli -a 1MFRmkt8Tc14Xizp -h cache", "1MFRmkt8Tc14Xizp"),
    ("AWS_SECRET_ACCESS_KEY", f"AWS_SECRET_ACCESS_KEY={AWS_SECRET}", AWS_SECRET),
])
def test_secret_formats(detector, entity, text, secret):
    assert (entity, secret) in found(detector, text)


def test_the_shells_working_directory_is_not_a_password(detector):
    assert found(detector, "PWD=/srv/app\nOLDPWD=/home/agent\nTERM=xterm") == []


def test_a_pem_private_key_block_is_one_finding(detector):
    pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq98s0f\nX9o1mK2Q==\n-----END RSA PRIVATE KEY-----"
    text = f"here is the key:\n{pem}\nthanks"
    assert found(detector, text) == [("PRIVATE_KEY", pem)]


def test_an_aws_secret_key_counts_next_to_its_key_id_or_a_context_word(detector):
    assert found(detector, f"{AWS_ID} {AWS_SECRET}") == [("AWS_ACCESS_KEY_ID", AWS_ID),
                                                          ("AWS_SECRET_ACCESS_KEY", AWS_SECRET)]
    assert found(detector, f"aws secret: {AWS_SECRET}") == [("AWS_SECRET_ACCESS_KEY", AWS_SECRET)]
    # 40 characters alone are not a key; a git commit (40 hex digits) never is.
    assert found(detector, f"blob {AWS_SECRET}") == []
    assert found(detector, "aws commit 3f786850e387550fdab836ed7e6dc881de23001b") == []


def test_key_id_and_secret_split_across_json_fields_are_both_redacted():
    creds = json.dumps({"aws_access_key_id": AWS_ID, "aws_secret_access_key": AWS_SECRET})
    out = redacted(genai_span(gen_ai__input__messages=[{"role": "tool", "parts": [
        {"type": "tool_call_response", "id": "call_1", "response": creds}]}]))
    response = json.loads(json.loads(out["gen_ai.input.messages"])[0]["parts"][0]["response"])
    assert response == {"aws_access_key_id": "<AWS_ACCESS_KEY_ID>", "aws_secret_access_key": "<AWS_SECRET_ACCESS_KEY>"}


# ---- the detector: configuration -----------------------------------------------------------------

def test_allow_list_values_and_patterns_are_never_redacted():
    d = Detector(Config(allow_list=["support@acme.com"], allow_patterns=[r".*@noreply\.acme\.com"]))
    text = "write support@acme.com or bot@noreply.acme.com, not jane@acme.com"
    assert found(d, text) == [("EMAIL_ADDRESS", "jane@acme.com")]


def test_regex_and_deny_list_recognizers_from_yaml():
    config, errors = decode_config(Config, {"recognizers": [
        {"entity": "EMPLOYEE_ID", "patterns": [{"regex": r"\bEMP-\d{6}\b", "score": 0.9}]},
        {"entity": "PROJECT", "deny_list": ["Project Falcon", "Bluebird"], "context": ["codename"]}]})
    assert errors == []
    d = Detector(config)
    assert found(d, "EMP-004211 works on project falcon and bluebird") == [
        ("EMPLOYEE_ID", "EMP-004211"), ("PROJECT", "project falcon"), ("PROJECT", "bluebird")]


@pytest.mark.parametrize("raw, message", [
    ({"operators": {"EMAIL_ADDRESS": {"type": "hash"}}}, "hash_key: required when an operator is hash "
                                                         "(operators.EMAIL_ADDRESS)"),
    ({"enable": ["EMAIL"]}, "enable: unknown entity type 'EMAIL'"),
    ({"operators": {"CARD": {"type": "mask"}}}, "operators: unknown entity type 'CARD'"),
    ({"operators": {"CREDIT_CARD": {"type": "mask", "masking_char": "**"}}},
     "operators.CREDIT_CARD: masking_char: must be one character"),
    ({"operators": {"CREDIT_CARD": {"type": "shred"}}}, "operators.CREDIT_CARD.type: must be one of"),
    ({"recognizers": [{"entity": "EMPLOYEE_ID", "patterns": [{"regex": "EMP-(\\d+"}]}]},
     "recognizers[0].patterns[0]: regex: invalid regular expression"),
    ({"recognizers": [{"entity": "employee id", "deny_list": ["x"]}]}, "recognizers[0]: entity: must be"),
    ({"allow_patterns": ["(unclosed"]}, "allow_patterns[0]: invalid regular expression"),
    ({"ner": True, "ner_model": "/nonexistent/model"}, "ner_model: spaCy model '/nonexistent/model'"),
    ({"score_threshold": 1.5}, "score_threshold: must be between 0 and 1"),
])
def test_config_errors_name_the_key(raw, message):
    _, errors = decode_config(Config, raw)
    assert any(message in e for e in errors), errors


# ---- the processor: structure --------------------------------------------------------------------

MESSAGES = [
    {"role": "user", "parts": [{"type": "text", "content": f"Hi, I'm {EMAIL}; my card is {CARD}."}]},
    {"role": "assistant", "parts": [
        {"type": "reasoning", "content": f"The user gave {EMAIL}."},
        {"type": "tool_call", "id": "call_Qx1", "name": "lookup_customer",
         "arguments": {"email": EMAIL, "phone": PHONE}},
        {"type": "tool_call", "id": "call_Qx2", "name": "charge", "arguments": json.dumps({"card": CARD})}]},
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_Qx1",
                                "response": json.dumps({"customer": {"ssn": SSN, "iban": IBAN}})}]},
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_Qx2", "response": {"status": "ok"}}]},
]


def test_content_attributes_are_redacted_inside_their_json():
    out = redacted(genai_span(
        gen_ai__input__messages=MESSAGES,
        gen_ai__system_instructions=[{"type": "text", "content": f"Escalate to {OPENAI_KEY} owner"}],
        gen_ai__output__messages=[{"role": "assistant", "parts": [{"type": "text", "content": f"Call {PHONE}"}],
                                   "finish_reason": "stop"}]))
    messages = json.loads(out["gen_ai.input.messages"])
    assert messages[0]["parts"][0]["content"] == "Hi, I'm <EMAIL_ADDRESS>; my card is <CREDIT_CARD>."
    assert messages[1]["parts"][0]["content"] == "The user gave <EMAIL_ADDRESS>."
    assert messages[1]["parts"][1]["arguments"] == {"email": "<EMAIL_ADDRESS>", "phone": "<PHONE_NUMBER>"}
    assert json.loads(messages[1]["parts"][2]["arguments"]) == {"card": "<CREDIT_CARD>"}  # still a JSON string
    assert json.loads(messages[2]["parts"][0]["response"]) == {"customer": {"ssn": "<US_SSN>", "iban": "<IBAN_CODE>"}}
    assert messages[3] == MESSAGES[3]
    # ids, names, roles and types are the same
    assert [[(p["type"], p.get("id"), p.get("name")) for p in m["parts"]] for m in messages] == \
        [[(p["type"], p.get("id"), p.get("name")) for p in m["parts"]] for m in MESSAGES]
    assert json.loads(out["gen_ai.system_instructions"]) == [{"type": "text", "content": "Escalate to <OPENAI_API_KEY> owner"}]
    assert json.loads(out["gen_ai.output.messages"])[0] == {
        "role": "assistant", "parts": [{"type": "text", "content": "Call <PHONE_NUMBER>"}], "finish_reason": "stop"}
    assert out["llmtap.redaction.count"] == 10
    assert out["llmtap.redaction.entity_types"] == ["CREDIT_CARD", "EMAIL_ADDRESS", "IBAN_CODE", "OPENAI_API_KEY",
                                                    "PHONE_NUMBER", "US_SSN"]
    assert EMAIL not in json.dumps(out) and "4111" not in json.dumps(out)


def test_listed_string_attributes_event_attributes_and_unlisted_ones():
    span = genai_span(
        events=[{"gen_ai.input.messages": json.dumps([user(f"mail {EMAIL}")]), "note": EMAIL}],
        url__full=f"https://api.example.com/v1/users?email={EMAIL}",
        db__statement=f"SELECT * FROM users WHERE email = '{EMAIL}'",
        gen_ai__response__id="chatcmpl-4111111111111111",
        user__note=f"{EMAIL} is not a listed attribute")
    attributes.add(span.attributes, {"process.command_args": ["agent", "--api-key", OPENAI_KEY]})
    [out] = redact_spans([span])
    attrs = attributes.as_dict(out.attributes)
    assert attrs["url.full"] == "https://api.example.com/v1/users?email=<EMAIL_ADDRESS>"
    assert attrs["db.statement"] == "SELECT * FROM users WHERE email = '<EMAIL_ADDRESS>'"
    assert attrs["process.command_args"] == ["agent", "--api-key", "<OPENAI_API_KEY>"]
    assert attrs["gen_ai.response.id"] == "chatcmpl-4111111111111111"
    assert attrs["user.note"].startswith(EMAIL)
    event = attributes.as_dict(out.events[0].attributes)
    assert json.loads(event["gen_ai.input.messages"]) == [user("mail <EMAIL_ADDRESS>")]
    assert event["note"] == EMAIL
    assert attrs["llmtap.redaction.count"] == 4  # the span's own and its event's


def test_which_attributes_is_configurable_with_wildcards():
    span = genai_span(**{"app.ticket.body": f"from {EMAIL}", "app.ticket.id": "T-1", "url.full": EMAIL})
    out = redacted(span, attributes=["app.ticket.*"])
    assert out["app.ticket.body"] == "from <EMAIL_ADDRESS>" and out["url.full"] == EMAIL


def test_log_bodies_string_map_and_array_and_log_attributes():
    request = ExportLogsServiceRequest()
    records = request.resource_logs.add().scope_logs.add().log_records
    for body in (f"user {EMAIL} paid with {CARD}",
                 {"event": "signup", "user": {"email": EMAIL, "phones": [PHONE]}, "count": 3},
                 [EMAIL, 7]):
        record = records.add(body=any_value(body))
        attributes.add(record.attributes, {"exception.message": f"no account for {EMAIL}", "code.function": "pay"})
    out = _run(Signal.LOGS, request, {})
    got = list(out.resource_logs[0].scope_logs[0].log_records)
    assert attributes.to_python(got[0].body) == "user <EMAIL_ADDRESS> paid with <CREDIT_CARD>"
    assert attributes.to_python(got[1].body) == {"event": "signup", "count": 3,
                                                 "user": {"email": "<EMAIL_ADDRESS>", "phones": ["<PHONE_NUMBER>"]}}
    assert attributes.to_python(got[2].body) == ["<EMAIL_ADDRESS>", 7]
    for record in got:
        attrs = attributes.as_dict(record.attributes)
        assert attrs["exception.message"] == "no account for <EMAIL_ADDRESS>" and attrs["code.function"] == "pay"
    assert [attributes.get(r.attributes, "llmtap.redaction.count") for r in got] == [3, 3, 2]


def test_resource_attributes_are_redacted():
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    attributes.add(rs.resource.attributes, {"service.name": "agent",
                                            "process.command_line": f"python agent.py --token {OPENAI_KEY}"})
    rs.scope_spans.add().spans.append(genai_span())
    out = _run(Signal.TRACES, request, {})
    assert attributes.as_dict(out.resource_spans[0].resource.attributes) == {
        "service.name": "agent", "process.command_line": "python agent.py --token <OPENAI_API_KEY>"}


# ---- the processor: operators --------------------------------------------------------------------

def _text_of(out: dict) -> str:
    return json.loads(out["gen_ai.input.messages"])[0]["parts"][0]["content"]


def test_operators_per_entity_type():
    span = genai_span(gen_ai__input__messages=[user(f"{EMAIL} / {CARD} / {PHONE} / {SSN}")])
    out = redacted(span, hash_key="k1", operators={
        "EMAIL_ADDRESS": {"type": "hash"},
        "CREDIT_CARD": {"type": "mask", "masking_char": "#", "chars_to_mask": 15},
        "PHONE_NUMBER": {"type": "mask", "chars_to_mask": 4, "from_end": True},
        "DEFAULT": {"type": "replace", "new_value": "[redacted]"}})
    digest = hmac.new(b"k1", EMAIL.encode(), hashlib.sha256).hexdigest()[:16]
    assert _text_of(out) == f"<EMAIL_ADDRESS:{digest}> / ###############1111 / (212) 555-**** / [redacted]"


def test_mask_without_a_count_masks_it_all():
    out = redacted(genai_span(gen_ai__input__messages=[user(f"card {CARD}")]),
                   operators={"DEFAULT": {"type": "mask"}})
    assert _text_of(out) == "card " + "*" * len(CARD)


def test_drop_removes_the_attribute_and_says_so():
    span = genai_span(gen_ai__input__messages=[user(f"key {OPENAI_KEY}")],
                      gen_ai__output__messages=[user(f"mail {EMAIL}")])
    out = redacted(span, operators={"OPENAI_API_KEY": {"type": "drop"}})
    assert "gen_ai.input.messages" not in out
    assert json.loads(out["gen_ai.output.messages"]) == [user("mail <EMAIL_ADDRESS>")]
    assert out["llmtap.redaction.dropped_attributes"] == ["gen_ai.input.messages"]
    assert out["llmtap.redaction.entity_types"] == ["EMAIL_ADDRESS", "OPENAI_API_KEY"]


def test_binary_that_is_not_text_cannot_be_looked_into_and_is_dropped():
    out = redacted(genai_span(**{"llmtap.http.response.body": b"\x1f\x8b\x08\x00\xff\xfe"}))
    assert "llmtap.http.response.body" not in out
    assert out["llmtap.redaction.dropped_attributes"] == ["llmtap.http.response.body"]


def test_a_span_without_content_gets_a_zero_summary():
    out = redacted(genai_span())
    assert out["llmtap.redaction.count"] == 0 and out["llmtap.redaction.entity_types"] == []


# ---- failing closed ------------------------------------------------------------------------------

class Raising(EntityRecognizer):
    def __init__(self):
        super().__init__(supported_entities=["EMAIL_ADDRESS"], name="Raising")

    def load(self):
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
        raise RuntimeError("recognizer bug")


class Stalling(Raising):
    def analyze(self, text, entities, nlp_artifacts=None) -> list[RecognizerResult]:
        # Computes for ten times the budget below (CPU time: past it however busy the machine is),
        # as a pathological regex or a slow model would.
        start = time.thread_time()
        while time.thread_time() - start < 0.05:
            pass
        return []


def _with_recognizer(recognizer, **config):
    chain, sink = _chain(Signal.TRACES, config)
    chain[0]._redactor._detector._opaque = (recognizer,)
    return chain, sink


@pytest.mark.parametrize("recognizer, reason, error", [
    (Raising(), "error", "internal error: RuntimeError: recognizer bug"),
    (Stalling(), "time_budget", "time budget exceeded while redacting gen_ai.input.messages: content dropped"),
])
def test_a_failing_recognizer_drops_the_content_and_the_span_goes_on(recognizer, reason, error):
    chain = _with_recognizer(recognizer, time_budget="5ms", time_budget_per_kib="0s")
    span = genai_span(events=[{"gen_ai.output.messages": json.dumps([user("hi")]), "event.note": "kept"}],
                      gen_ai__input__messages=[user(f"mail {EMAIL}")], url__full="https://example.com/a")
    [out] = redact_spans([span, ], chain=chain)
    attrs = attributes.as_dict(out.attributes)
    for key in ("gen_ai.input.messages", "url.full"):
        assert key not in attrs
    assert attributes.as_dict(out.events[0].attributes) == {"event.note": "kept"}
    assert attrs["gen_ai.request.model"] == "gpt-4o" and out.name == "chat gpt-4o"
    assert attrs["llmtap.redaction.error"] == error
    assert attrs["llmtap.redaction.dropped_attributes"] == ["gen_ai.input.messages", "gen_ai.output.messages",
                                                            "url.full"]
    telemetry = chain[0][0].settings.telemetry
    labels = {"processor": "pii_redaction", "signal": "traces", "reason": reason}
    assert telemetry.value("llmtap_processor_pii_redaction_failed_items_total", **labels) == 1
    assert telemetry.value("llmtap_processor_pii_redaction_dropped_attributes_total", processor="pii_redaction",
                           reason="fail_closed") == 3


def test_a_catastrophic_user_regex_is_cut_off_by_the_budget():
    config = {"time_budget": "20ms", "recognizers": [{"entity": "BAD", "patterns": [{"regex": "(a|aa)+$"}]}]}
    # An Arabic-Indic digit: the prefilter does not apply, and the pattern itself runs (and backtracks).
    out = redacted(genai_span(gen_ai__input__messages=[user("a" * 40 + "٣")]), **config)
    assert "gen_ai.input.messages" not in out
    assert out["llmtap.redaction.error"].startswith("time budget exceeded in pattern")
    # Elsewhere Hyperscan's automaton knows in linear time that it cannot match: not run.
    for end in "!", "é":
        out = redacted(genai_span(gen_ai__input__messages=[user("a" * 40 + end)]), **config)
        assert "gen_ai.input.messages" in out and "llmtap.redaction.error" not in out


class RaisingOnBoom(Raising):
    def analyze(self, text, entities, nlp_artifacts=None):
        if "boom" in text:
            raise RuntimeError("recognizer bug")
        return []


def test_a_failing_span_costs_only_itself():
    chain = _with_recognizer(RaisingOnBoom())
    spans = redact_spans([genai_span(gen_ai__input__messages=[user(f"boom {EMAIL}")]),
                          genai_span(gen_ai__input__messages=[user(f"mail {EMAIL}")])], chain=chain)
    first, second = (attributes.as_dict(s.attributes) for s in spans)
    assert "gen_ai.input.messages" not in first and first["llmtap.redaction.count"] == 0
    assert json.loads(second["gen_ai.input.messages"]) == [user("mail <EMAIL_ADDRESS>")]
    assert second["llmtap.redaction.count"] == 1 and "llmtap.redaction.error" not in second


# ---- properties ----------------------------------------------------------------------------------

PII = st.sampled_from([EMAIL, CARD, IBAN, SSN, PHONE, OPENAI_KEY, AWS_ID, "10.1.2.3", "bob@corp.io",
                       "+44 20 7946 0958", "my passport 912345678"])
WORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
TEXT = st.lists(st.one_of(PII, WORDS), max_size=6).map(" ".join)
JSONISH = st.recursive(st.one_of(TEXT, st.integers(), st.booleans(), st.none()),
                       lambda inner: st.one_of(st.lists(inner, max_size=4),
                                               st.dictionaries(st.sampled_from(["content", "email", "card", "x"]),
                                                               inner, max_size=4)), max_leaves=12)
MESSAGE_LISTS = st.lists(st.builds(lambda role, text, args: {"role": role, "parts": [
    {"type": "text", "content": text},
    {"type": "tool_call", "id": "call_1", "name": "f", "arguments": args}]},
    st.sampled_from(["user", "assistant", "tool"]), TEXT, JSONISH), min_size=1, max_size=3)

_PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def chain():
    return _chain(Signal.TRACES, {"hash_key": "k", "operators": {"EMAIL_ADDRESS": {"type": "hash"}}})


@_PROPERTY
@given(messages=MESSAGE_LISTS)
def test_output_is_valid_json_of_the_same_shape_and_redacting_twice_changes_nothing(chain, messages):
    once = attributes.as_dict(redact_spans([genai_span(gen_ai__input__messages=messages)], chain=chain)[0].attributes)
    out = json.loads(once["gen_ai.input.messages"])
    assert [[p["type"] for p in m["parts"]] for m in out] == [[p["type"] for p in m["parts"]] for m in messages]
    again = genai_span()
    attributes.update(again.attributes, once)
    twice = attributes.as_dict(redact_spans([again], chain=chain)[0].attributes)
    assert twice == once


@_PROPERTY
@given(text=TEXT)
def test_an_allow_listed_value_survives(text):
    d = _allowing
    full = f"{text} {EMAIL} {text}"
    assert (EMAIL in [full[f.start:f.end] for f in _default.analyze(full)])
    assert not any(EMAIL in full[f.start:f.end] for f in d.analyze(full))


_default = Detector()
_allowing = Detector(Config(allow_list=[EMAIL]))


@_PROPERTY
@given(a=PII, b=PII, text=WORDS)
def test_hash_same_value_same_token_other_key_other_token(a, b, text):
    def token(value: str, key: str) -> str:
        out = redacted(genai_span(gen_ai__input__messages=[user(f"{text} {value}")]), hash_key=key,
                       operators={"DEFAULT": {"type": "hash"}})
        return _text_of(out)

    assert token(a, "k1") == token(a, "k1")
    assert token(a, "k1") != token(a, "k2")
    if a != b and "passport" not in a + b:
        assert token(a, "k1") != token(b, "k1")


# ---- offline -------------------------------------------------------------------------------------

OFFLINE = textwrap.dedent("""
    import json, socket, sys
    tried = []
    real_connect = socket.socket.connect
    def connect(self, address):
        tried.append(str(address))
        return real_connect(self, address)
    socket.socket.connect = connect
    socket.socket.connect_ex = lambda self, address: tried.append(str(address)) or 101
    from llmtap.processors.pii_redaction import Config
    from llmtap.processors.pii_redaction.detect import Detector
    text = "Ada Lovelace of London wrote to ada@example.co.uk from 10.0.0.7 with key sk-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
    for ner in (False, True):
        d = Detector(Config(ner=ner))
        print(json.dumps(sorted({f.entity_type for f in d.analyze(text)})))
    print(json.dumps(tried))
""")


def test_runs_without_network_with_ner_on_and_off(tmp_path):
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "TLDEXTRACT_CACHE": str(tmp_path / "tld")}
    try:
        result = subprocess.run(["unshare", "--net", sys.executable, "-c", OFFLINE], env=env, capture_output=True,
                                text=True, timeout=180)
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if result.returncode != 0 and "unshare" in result.stderr and "Operation not permitted" in result.stderr:
        pytest.skip("unshare --net needs root")
    assert result.returncode == 0, result.stderr
    off, on, tried = (json.loads(line) for line in result.stdout.strip().splitlines()[-3:])
    assert off == ["EMAIL_ADDRESS", "IP_ADDRESS", "OPENAI_API_KEY"]
    assert on == ["EMAIL_ADDRESS", "IP_ADDRESS", "LOCATION", "OPENAI_API_KEY", "PERSON"]
    assert tried == []  # not even attempted
    assert not any(tmp_path.rglob("*"))  # no public-suffix list (or anything else) fetched and cached


def test_presidio_chatter_stays_out_of_the_log_and_one_summary_line_is_logged(caplog):
    # presidio logs "Loaded recognizer: ..." for each of its ~100 recognizers, at info.
    from llmtap.processors.pii_redaction import recognizers

    recognizers._predefined.cache_clear()   # build presidio's recognizers again, as at process start
    with caplog.at_level("INFO"):
        _chain(Signal.TRACES, {})
        Config().validate()
    presidio = [r.getMessage() for r in caplog.records if r.name.startswith("presidio")]
    ours = [r.getMessage() for r in caplog.records if "pii_redaction" in r.getMessage()]
    assert presidio == []
    assert len(ours) == 1 and ours[0].startswith("pii_redaction: ") and "NER off" in ours[0], ours


# ---- the shared secret table (llmtap/secretpatterns.py): the eBPF receiver redacts the same ------

from llmtap.secretpatterns import (  # noqa: E402
    GLUED_PASSWORD_FLAGS, PASSWORD_VALUE_FLAGS, SECRET_PATTERNS, USER_PASSWORD_FLAGS)
from secret_examples import TOKENS, example_secret, name  # noqa: E402


@pytest.mark.parametrize("pattern", SECRET_PATTERNS, ids=name)
def test_every_example_of_the_shared_secret_table_is_found(detector, pattern):
    assert (pattern.entity, example_secret(pattern)) in found(detector, pattern.example)


@pytest.mark.parametrize("pattern", TOKENS, ids=name)
def test_every_token_format_is_found_where_command_lines_put_it(detector, pattern):
    key = pattern.example
    for text in (f'curl -H "x-api-key: {key}" https://api.example.com/v1', f"OPENAI_API_KEY={key} python a.py",
                 f"tool --token={key}", f"python a.py {key}"):
        assert (pattern.entity, key) in found(detector, text), text


@pytest.mark.parametrize("text", [
    *[f"{command} -h db {flag}s3cr3tpw shop" for command, flags in GLUED_PASSWORD_FLAGS.items() for flag in flags],
    *[f"{command} {flag} s3cr3tpw x" for command, flags in PASSWORD_VALUE_FLAGS.items() for flag in flags],
    *[f"{command} {flag} bob:s3cr3tpw x" for command, flags in USER_PASSWORD_FLAGS.items() for flag in flags],
])
def test_the_command_line_passwords_of_the_shared_table(detector, text):
    assert ("PASSWORD", "s3cr3tpw") in found(detector, text)


def test_a_command_s_other_flags_are_not_its_password(detector):
    assert found(detector, "redis-cli -h cache -p 6380 ping; mysql -P 3306 -p shop") == []
