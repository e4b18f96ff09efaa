"""Reading config files: ${...} substitution and merging, as the collector does."""

import string

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmtap.confmap import ConfigSourceError, expand, expand_string, load_files, merge

ENV = {"HOST": "0.0.0.0", "PORT": "4317", "EMPTY": "", "FLAG": "true", "LIST": "[1, 2]"}


@pytest.mark.parametrize("text, expected", [
    ("${env:HOST}", "0.0.0.0"),
    ("${HOST}", "0.0.0.0"),
    ("${env:HOST}:${env:PORT}", "0.0.0.0:4317"),
    ("${env:PORT}", 4317),                       # a whole-value reference is typed by YAML
    ("port ${env:PORT}", "port 4317"),           # inside text it stays text
    ("${env:FLAG}", True),
    ("${env:MISSING:-localhost:4318}", "localhost:4318"),
    ("${env:EMPTY:-fallback}", "fallback"),      # empty counts as unset for :-
    ("${env:HOST:-ignored}", "0.0.0.0"),
    ("${env:MISSING}", ""),                      # unset → empty, as the collector does
    ("$$", "$"),
    ("price: $$5", "price: $5"),
    ("$${env:HOST}", "${env:HOST}"),             # $$ escapes a reference
    ("${env:LIST}", "[1, 2]"),                   # a variable never injects structure
    ("no refs here", "no refs here"),
])
def test_substitution(text, expected):
    assert expand_string(text, ENV) == expected


def test_unsupported_scheme_is_an_error_naming_where():
    with pytest.raises(ConfigSourceError, match=r"exporters::otlp::endpoint: unsupported config source '\$\{file:/x\}'"):
        expand({"exporters": {"otlp": {"endpoint": "${file:/x}"}}}, ENV)


def test_invalid_variable_name():
    with pytest.raises(ConfigSourceError, match="invalid environment variable name"):
        expand_string("${env:1BAD}", ENV)


def test_merging_files_later_wins_maps_merge_lists_replace(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("receivers:\n  otlp:\n    protocols:\n      grpc: {endpoint: 'a:1'}\n"
                 "service:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug, file]}\n")
    b.write_text("receivers:\n  otlp:\n    protocols:\n      http: {endpoint: '${env:HOST}:2'}\n"
                 "service:\n  pipelines:\n    traces: {exporters: [debug]}\n")
    merged = load_files([str(a), str(b)], ENV)
    assert merged["receivers"]["otlp"]["protocols"] == {"grpc": {"endpoint": "a:1"},
                                                        "http": {"endpoint": "0.0.0.0:2"}}
    assert merged["service"]["pipelines"]["traces"] == {"receivers": ["otlp"], "exporters": ["debug"]}


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigSourceError, match="cannot read config file .*missing.yaml"):
        load_files([str(tmp_path / "missing.yaml")], ENV)
    bad = tmp_path / "bad.yaml"
    bad.write_text("receivers: [unclosed\n")
    with pytest.raises(ConfigSourceError, match="bad.yaml: not valid YAML"):
        load_files([str(bad)], ENV)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n")
    with pytest.raises(ConfigSourceError, match="the top level must be a map"):
        load_files([str(scalar)], ENV)
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigSourceError, match="not UTF-8"):
        load_files([str(binary)], ENV)


# --- properties -------------------------------------------------------------

names = st.text(string.ascii_uppercase + "_", min_size=1, max_size=8)
plain = st.text(st.characters(blacklist_characters="$", blacklist_categories=("Cs",)), max_size=30)
values = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(plain)
def test_text_without_dollar_is_unchanged(text):
    assert expand_string(text, ENV) == text


@given(names, values, plain, plain)
def test_embedded_reference_is_replaced_verbatim(name, value, before, after):
    text = f"{before}x${{env:{name}}}x{after}"
    assert expand_string(text, {name: value}) == f"{before}x{value}x{after}"


@given(names, values)
def test_default_used_only_when_unset_or_empty(name, default):
    default = default.replace("}", "")
    assert expand_string(f"a${{env:{name}:-{default}}}", {}) == f"a{default}"
    assert expand_string(f"a${{env:{name}:-{default}}}", {name: "set"}) == "aset"


@given(plain)
def test_double_dollar_is_a_literal_dollar(text):
    assert expand_string(text + "$$" + text, ENV) == text + "$" + text


@given(names, st.one_of(st.integers(), st.booleans(), st.text(string.ascii_letters, min_size=1)))
def test_whole_value_reference_round_trips_yaml_scalars(name, value):
    dumped = yaml.safe_dump(value).removesuffix("\n...\n").strip()
    assert expand_string(f"${{env:{name}}}", {name: dumped}) == value


yaml_trees = st.recursive(
    st.one_of(st.integers(), st.text(max_size=5), st.booleans(), st.lists(st.integers(), max_size=3)),
    lambda children: st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=3), children, max_size=4),
    max_leaves=8,
)
maps = st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=3), yaml_trees, max_size=4)
# Generating nested maps is slow on a busy 2-core machine; that is not a failure.
relaxed = settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)


@relaxed
@given(maps, maps)
def test_merge_later_wins_and_keeps_every_key(a, b):
    merged = merge(a, b)
    assert set(merged) == set(a) | set(b)
    for key, value in b.items():
        if not (isinstance(value, dict) and isinstance(a.get(key), dict)):
            assert merged[key] == value
    for key in set(a) - set(b):
        assert merged[key] == a[key]


@relaxed
@given(maps, maps, maps)
def test_merge_is_associative(a, b, c):
    assert merge(merge(a, b), c) == merge(a, merge(b, c))


@relaxed
@given(maps)
def test_merge_identity(a):
    assert merge(a, {}) == a
    assert merge({}, a) == a
    assert merge(a, a) == a
