# The two commands of the README:
#   make run    install everything and start llmtap with its built-in default config
#   make test   install everything and run the whole test suite (what .ci/run calls)
# Both also prepare this machine for eBPF capture when run as root (`llmtap doctor --fix`:
# bcc and kernel headers from apt, tracefs/debugfs mounted, headers linked for the running kernel).
VENV ?= .venv
PY := $(VENV)/bin/python
# The suite fails, rather than skips, when eBPF capture cannot run. `make test LLMTAP_REQUIRE_EBPF=0`
# runs everything else on a machine without it.
LLMTAP_REQUIRE_EBPF ?= 1
export LLMTAP_REQUIRE_EBPF

.PHONY: install host run test bench bench-ebpf bench-exec bench-genai bench-pii

$(VENV)/.installed: pyproject.toml tests/plugins/llmtap-example-plugin/pyproject.toml tests/llm_clients/package-lock.json \
                    tests/agents/package-lock.json
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]' ./tests/plugins/llmtap-example-plugin
	cd tests/llm_clients && npm ci --no-audit --no-fund --loglevel=error
	cd tests/agents && npm ci --no-audit --no-fund --loglevel=error  # real agent CLIs: gemini-cli, claude-code
	touch $@

install: $(VENV)/.installed

host: install
	@if [ "$$(id -u)" = 0 ]; then $(VENV)/bin/llmtap doctor --fix || [ "$(LLMTAP_REQUIRE_EBPF)" = 0 ]; \
	else echo "not root: eBPF capture needs root (sudo make host); llmtap doctor says what is missing"; \
	     [ "$(LLMTAP_REQUIRE_EBPF)" = 0 ]; fi

run: install
	-@$(MAKE) --no-print-directory host LLMTAP_REQUIRE_EBPF=0
	$(VENV)/bin/llmtap run

# promtool checks the example alert rules and dashboard queries: taken out of Debian's
# prometheus package (the binary only; no daemon is installed). Without apt those tests skip.
$(VENV)/bin/promtool: | $(VENV)/.installed
	-@d=$$(mktemp -d) && cd $$d && { apt-get download -q prometheus 2>/dev/null || \
	  { apt-get update -q >/dev/null && apt-get download -q prometheus; }; } && \
	  dpkg-deb --fsys-tarfile prometheus_*.deb | tar -xO ./usr/bin/promtool > $(CURDIR)/$@.tmp && \
	  chmod +x $(CURDIR)/$@.tmp && mv $(CURDIR)/$@.tmp $(CURDIR)/$@; rm -rf $$d $(CURDIR)/$@.tmp

test: host $(VENV)/bin/promtool
	$(PY) -m pytest -q -p no:cacheprovider

bench: install
	$(PY) bench/otlp_passthrough.py

bench-ebpf: host
	$(PY) bench/ebpf_capture.py

bench-exec: host
	$(PY) bench/ebpf_exec.py --rounds 8

# The GenAI processors: stream reassembly vs the SDKs, mapping, token counting, the whole chain.
bench-genai: install
	$(PY) bench/sse_reassembly.py
	$(PY) bench/genai_semconv.py
	$(PY) bench/token_count.py
	$(PY) bench/genai_chain.py

# PII redaction against stock presidio on the labeled corpus.
bench-pii: install
	$(PY) bench/pii_redaction.py --rounds 5
