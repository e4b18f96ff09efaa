"""docs/config-reference.md is generated from the config classes and must match them."""

from llmtap import reference


def test_committed_reference_matches_the_config_classes():
    assert reference.PATH.read_text() == reference.render(), (
        "docs/config-reference.md is stale: run `python -m llmtap.reference`")


def test_every_builtin_component_is_documented():
    text = reference.render()
    for heading in ["## receiver `otlp`", "## receiver `ebpf`", "## processor `batch`", "## processor `memory_limiter`",
                    "## exporter `otlp`", "## exporter `otlphttp`", "## exporter `file`", "## exporter `debug`",
                    "## connector `forward`", "## extension `health_check`", "## extension `bearertokenauth`",
                    "## `service`"]:
        assert heading in text
