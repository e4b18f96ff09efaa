# The two commands of the README:
#   make run    install everything and start llmtap with its built-in default config
#   make test   install everything and run the whole test suite (what .ci/run calls)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test bench

$(VENV)/.installed: pyproject.toml tests/plugins/llmtap-example-plugin/pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' ./tests/plugins/llmtap-example-plugin
	touch $@

install: $(VENV)/.installed

run: install
	$(VENV)/bin/llmtap run

test: install
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) bench/otlp_passthrough.py
