"""The bearertokenauth extension: what a receiver accepts, what an exporter sends,
tokens from config or from a file that may be rotated, and config mistakes."""

from __future__ import annotations

import os

import pytest

from conftest import ReadyHost, new_settings
from llmtap.configtypes import decode_config
from llmtap.extensions.bearertokenauth import Config, factory


async def started(**config):
    parsed, errors = decode_config(Config, config)
    assert errors == []
    extension = factory.create(new_settings("extension", "bearertokenauth"), parsed)
    await extension.start(ReadyHost())
    return extension


def test_defaults_are_the_collectors():
    assert (Config().scheme, Config().header) == ("Bearer", "authorization")


@pytest.mark.parametrize("config, error", [
    ({}, "token: one of token, tokens or filename must be set"),
    ({"token": "a", "tokens": ["b"]}, "token, tokens: set one of them, not both"),
    ({"tokens": ["a", ""]}, "tokens: must not contain empty tokens"),
    ({"token": "a", "header": " "}, "header: must not be empty"),
])
def test_config_mistakes(config, error):
    _, errors = decode_config(Config, config)
    assert errors == [error]


@pytest.mark.parametrize("headers, ok", [
    ({"authorization": "Bearer s3cret"}, True),
    ({"Authorization": "Bearer s3cret"}, True),     # header names are case-insensitive
    ({"authorization": "Bearer s3cret "}, False),
    ({"authorization": "bearer s3cret"}, False),
    ({"authorization": "s3cret"}, False),
    ({"authorization": "Bearer s3cre"}, False),
    ({"x-api-key": "Bearer s3cret"}, False),
    ({}, False),
])
async def test_authenticate(headers, ok):
    extension = await started(token="s3cret")
    assert extension.authenticate(headers) is ok


async def test_header_value_is_what_authenticate_accepts():
    extension = await started(token="s3cret")
    assert extension.header_value() == "Bearer s3cret"
    assert extension.authenticate({extension.header: extension.header_value()})


async def test_custom_header_and_no_scheme():
    extension = await started(token="k-123", scheme="", header="X-Api-Key")
    assert extension.header_value() == "k-123"
    assert extension.authenticate({"x-api-key": "k-123"})
    assert not extension.authenticate({"authorization": "k-123"})


async def test_any_of_several_tokens_is_accepted_and_the_first_is_sent():
    extension = await started(tokens=["old", "new"])
    assert extension.authenticate({"authorization": "Bearer old"})
    assert extension.authenticate({"authorization": "Bearer new"})
    assert not extension.authenticate({"authorization": "Bearer other"})
    assert extension.header_value() == "Bearer old"


async def test_token_file_is_read_at_start_and_again_when_rotated(tmp_path):
    path = tmp_path / "token"
    path.write_text("first\n")
    extension = await started(filename=str(path))
    assert extension.authenticate({"authorization": "Bearer first"})

    path.write_text("second\nthird\n")
    os.utime(path, ns=(1, 1))  # a different mtime even on coarse-grained filesystems

    assert extension.authenticate({"authorization": "Bearer second"})
    assert extension.authenticate({"authorization": "Bearer third"})
    assert not extension.authenticate({"authorization": "Bearer first"})
    assert extension.header_value() == "Bearer second"


async def test_a_token_file_that_disappears_keeps_the_last_tokens(tmp_path, caplog):
    path = tmp_path / "token"
    path.write_text("first\n")
    extension = await started(filename=str(path))
    path.unlink()

    assert extension.authenticate({"authorization": "Bearer first"})
    assert "cannot re-read token file" in caplog.text


@pytest.mark.parametrize("content, error", [(None, "cannot read token file"), ("\n\n", "is empty")])
async def test_start_fails_without_a_usable_token_file(tmp_path, content, error):
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    with pytest.raises(RuntimeError, match=f"filename: .*{error}"):
        await started(filename=str(path))
