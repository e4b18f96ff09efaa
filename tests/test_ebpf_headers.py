"""Header allow-lists and secret removal, and URL credential scrubbing, for the eBPF
receiver: what a captured LLM request's headers and target become before anything
leaves the parser."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from llmtap.receiver.ebpf.headers import (DEFAULT_REQUEST_HEADERS, DEFAULT_RESPONSE_HEADERS, HeaderAllowList,
                                          is_secret_header, scrub_authority, scrub_url)

# What the openai and anthropic Python SDKs send (values shortened).
SDK_REQUEST_HEADERS = [
    ("Host", "api.openai.com"), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"),
    ("Accept", "application/json"), ("Content-Type", "application/json"), ("User-Agent", "OpenAI/Python 1.54.0"),
    ("X-Stainless-Lang", "python"), ("X-Stainless-Package-Version", "1.54.0"), ("X-Stainless-OS", "Linux"),
    ("X-Stainless-Arch", "x64"), ("X-Stainless-Runtime", "CPython"), ("X-Stainless-Runtime-Version", "3.11.9"),
    ("X-Stainless-Async", "false"), ("X-Stainless-Retry-Count", "0"), ("X-Stainless-Read-Timeout", "600"),
    ("Authorization", "Bearer sk-proj-SECRET"), ("OpenAI-Organization", "org-1"), ("Content-Length", "93"),
    ("anthropic-version", "2023-06-01"), ("x-api-key", "sk-ant-SECRET"), ("Idempotency-Key", "stainless-retry-1"),
]


def test_default_request_allow_list_keeps_sdk_metadata_and_drops_credentials_and_the_rest():
    kept = HeaderAllowList(DEFAULT_REQUEST_HEADERS).filter(SDK_REQUEST_HEADERS)
    assert kept == [
        ("host", "api.openai.com"), ("accept-encoding", "gzip, deflate"), ("accept", "application/json"),
        ("content-type", "application/json"), ("user-agent", "OpenAI/Python 1.54.0"),
        ("x-stainless-lang", "python"), ("x-stainless-package-version", "1.54.0"), ("x-stainless-os", "Linux"),
        ("x-stainless-arch", "x64"), ("x-stainless-runtime", "CPython"), ("x-stainless-runtime-version", "3.11.9"),
        ("x-stainless-async", "false"), ("x-stainless-retry-count", "0"), ("x-stainless-read-timeout", "600"),
        ("openai-organization", "org-1"), ("content-length", "93"), ("anthropic-version", "2023-06-01"),
        ("idempotency-key", "stainless-retry-1"),
    ]


def test_default_response_allow_list_keeps_rate_limit_token_counts():
    response = [
        ("Date", "Tue, 01 Jul 2025 10:00:00 GMT"), ("Content-Type", "text/event-stream"),
        ("x-ratelimit-limit-tokens", "30000"), ("x-ratelimit-remaining-tokens", "29000"),
        ("anthropic-ratelimit-input-tokens-remaining", "40000"), ("anthropic-ratelimit-tokens-limit", "80000"),
        ("openai-processing-ms", "312"), ("request-id", "req_1"), ("CF-RAY", "8f-SJC"),
        ("Set-Cookie", "__cf_bm=SECRET; path=/"), ("Strict-Transport-Security", "max-age=1"),
    ]
    kept = HeaderAllowList(DEFAULT_RESPONSE_HEADERS).filter(response)
    assert [name for name, _ in kept] == [
        "date", "content-type", "x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens",
        "anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-tokens-limit", "openai-processing-ms",
        "request-id", "cf-ray"]


@pytest.mark.parametrize("name", [
    "authorization", "Proxy-Authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "set-cookie",
    "x-portkey-api-key", "ocp-apim-subscription-key", "x-auth-token", "x-access-token", "x-amz-security-token",
    "private-token", "x-csrf-token", "x-client-secret", "x-password", "x-session-id", "x-hub-signature-256",
    "apikey", "x-apikey", "api_key", "x-key", "x-amz-credential", "www-authenticate",
])
def test_secret_headers_are_dropped_even_when_the_user_allows_every_header(name):
    assert is_secret_header(name)
    assert HeaderAllowList(["*"]).filter([(name, "SECRET-VALUE")]) == []
    assert HeaderAllowList([name]).filter([(name, "SECRET-VALUE")]) == []


@pytest.mark.parametrize("value", ["Bearer abc", "basic dXNlcjpw", "sk-ant-api03-abc", "AIzaSyA-abc",
                                   "AWS4-HMAC-SHA256 Credential=AKIA/2025"])
def test_a_credential_looking_value_is_dropped_whatever_its_header_name(value):
    assert HeaderAllowList(["*"]).filter([("x-custom", value)]) == []


@pytest.mark.parametrize("name", [
    "idempotency-key", "x-stainless-helper-method", "x-stainless-poll-helper", "x-stainless-timeout",
    "x-ratelimit-reset-tokens", "anthropic-ratelimit-output-tokens-reset", "x-goog-api-client", "content-type",
    "openai-organization", "anthropic-beta", "x-request-id",
])
def test_harmless_headers_are_not_taken_for_secrets(name):
    assert not is_secret_header(name, "1")


def test_allow_list_patterns_are_case_insensitive_globs():
    allow = HeaderAllowList(["X-Stainless-*", "content-?ype"])
    assert allow.allows("x-stainless-lang") and allow.allows("X-STAINLESS-OS") and allow.allows("Content-Type")
    assert not allow.allows("x-stainles") and not allow.allows("accept")
    assert HeaderAllowList([]).filter([("content-type", "text/plain")]) == []


def test_filter_keeps_repeated_headers_in_order():
    headers = [("Accept", "a"), ("X-Other", "o"), ("accept", "b")]
    assert HeaderAllowList(["accept"]).filter(headers) == [("accept", "a"), ("accept", "b")]


@pytest.mark.parametrize("target, scrubbed", [
    ("/v1beta/models/gemini:generateContent?key=AIzaSECRET", "/v1beta/models/gemini:generateContent?key=REDACTED"),
    ("/x?alt=sse&key=AIzaSECRET", "/x?alt=sse&key=REDACTED"),
    ("/x?API_KEY=s&api-key=s&apikey=s&Access_Token=s&token=s", "/x?API_KEY=REDACTED&api-key=REDACTED&"
                                                              "apikey=REDACTED&Access_Token=REDACTED&token=REDACTED"),
    ("/o?X-Amz-Signature=s&X-Amz-Credential=s&X-Amz-Security-Token=s&AWSAccessKeyId=s&Signature=s&sig=s",
     "/o?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED&"
     "AWSAccessKeyId=REDACTED&Signature=REDACTED&sig=REDACTED"),
    ("/o?X-Goog-Signature=abc&X-Goog-Date=20250101", "/o?X-Goog-Signature=REDACTED&X-Goog-Date=20250101"),
    ("/x?api%5Fkey=s", "/x?api%5Fkey=REDACTED"),          # percent-encoded name
    ("/x?key", "/x?key"),                                  # no value to hide
    ("/x?key=&a=1", "/x?key=REDACTED&a=1"),
    ("/x?monkey=1&keys=2", "/x?monkey=1&keys=2"),          # names are compared whole
    ("/x?key=s#frag", "/x?key=REDACTED#frag"),
    ("/v1/chat/completions", "/v1/chat/completions"),
    ("/x?", "/x?"),
    ("https://user:pw@example.com/x?key=s", "https://REDACTED:REDACTED@example.com/x?key=REDACTED"),
    ("", ""),
])
def test_scrub_url_redacts_credential_query_values(target, scrubbed):
    assert scrub_url(target) == scrubbed


@given(st.text(alphabet="ab=&?#%/k:@", max_size=40))
def test_scrub_url_is_idempotent_and_keeps_the_path(target):
    once = scrub_url(target)
    assert scrub_url(once) == once
    assert once.split("?")[0].split("#")[0].split("@")[-1] == target.split("?")[0].split("#")[0].split("@")[-1]


@given(st.lists(st.sampled_from(["key", "Key", "TOKEN", "sig", "model", "alt"]), min_size=1, max_size=6))
def test_every_credential_value_is_hidden_and_every_other_value_kept(names):
    target = "/p?" + "&".join(f"{name}=value{i}x" for i, name in enumerate(names))
    scrubbed = scrub_url(target)
    for i, name in enumerate(names):
        assert (f"value{i}x" in scrubbed) == (name in ("model", "alt"))


def test_scrub_authority_drops_userinfo():
    assert scrub_authority("user:pw@api.example.com:8443") == "api.example.com:8443"
    assert scrub_authority("api.openai.com") == "api.openai.com"
