"""The `ebpf` receiver's config."""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import Literal

from llmtap.configtypes import ByteSize, Duration, doc
from llmtap.receiver.ebpf.agents import validate_patterns
from llmtap.receiver.ebpf.endpoints import EndpointRule, default_rules
from llmtap.receiver.ebpf.events import MAX_ARGS_BYTES
from llmtap.receiver.ebpf.headers import DEFAULT_REQUEST_HEADERS, DEFAULT_RESPONSE_HEADERS

MIB = 1024 * 1024


@dataclass
class ProcessFilter:
    pids: list[int] = field(default_factory=list, metadata=doc("Process IDs."))
    executables: list[str] = field(default_factory=list, metadata=doc(
        "Executable names or globs (`node`, `python3*`); a pattern with `/` matches the full path."))
    cgroups: list[str] = field(default_factory=list, metadata=doc(
        "cgroup path globs (`/system.slice/docker-*`, `*/kubepods/*`): selects containers."))

    @property
    def empty(self) -> bool:
        return not (self.pids or self.executables or self.cgroups)


@dataclass
class HeaderAllowList:
    request: list[str] = field(default_factory=lambda: list(DEFAULT_REQUEST_HEADERS), metadata=doc(
        "Request header names (globs) to keep. Credentials and cookies are never kept, whatever is listed."))
    response: list[str] = field(default_factory=lambda: list(DEFAULT_RESPONSE_HEADERS), metadata=doc(
        "Response header names (globs) to keep. set-cookie is never kept."))


# Agent CLIs that are agents from their first instruction, before (or without) an LLM call llmtap sees.
DEFAULT_AGENTS = ["claude", "gemini", "codex", "aider", "opencode", "cursor-agent"]


@dataclass
class ProcessCapture:
    enabled: bool = field(default=True, metadata=doc(
        "Report processes: a span per process (exec → exit) in agent trees, and the process tree on "
        "every span. When false, exec and exit are still watched (to attach to new programs and end "
        "their connections), without arguments or forks, and no process span is made."))
    scope: Literal["agents", "all"] = field(default="agents", metadata=doc(
        "`agents`: spans for agent processes and their descendants only (everything else is counted in "
        "llmtap_receiver_ebpf_processes_not_emitted_total); `all`: for every process on the machine."))
    agents: list[str] = field(default_factory=lambda: list(DEFAULT_AGENTS), metadata=doc(
        "Processes that are agents besides those that made a captured LLM call: `NAME` (a glob on the "
        "executable's name, or on the script an interpreter runs: `gemini` matches "
        "`node /usr/local/bin/gemini`), `INTERPRETER:SCRIPT` (`python:my_agent.py`), a glob with `/` "
        "on full paths. Setting it replaces the default list."))
    window: Duration = field(default=Duration(30.0), metadata=doc(
        "How long a finished process that is in no agent's tree is kept, in case an ancestor becomes an "
        "agent (its first LLM call) after it ran; then it is counted, not reported."))
    max_tracked: int = field(default=65536, metadata=doc(
        "Most processes held at once (running ones, and finished ones within the window); beyond it the "
        "oldest are forgotten and counted (reason table_full)."))
    max_args_bytes: ByteSize = field(default=ByteSize(4096), metadata=doc(
        f"Bytes of a program's arguments copied at exec (at most {MAX_ARGS_BYTES}); longer command "
        "lines are cut and marked llmtap.process.command_args.truncated."))

    def validate(self) -> list[str]:
        errors = validate_patterns(self.agents)
        if not 0 < int(self.max_args_bytes) <= MAX_ARGS_BYTES:
            errors.append(f"max_args_bytes: must be 1..{MAX_ARGS_BYTES}; got {int(self.max_args_bytes)}")
        if self.max_tracked < 16:
            errors.append(f"max_tracked: must be at least 16; got {self.max_tracked}")
        return errors


@dataclass
class Config:
    endpoints: list[EndpointRule] = field(default_factory=default_rules, metadata=doc(
        "The LLM APIs to capture (host and path globs). The default covers OpenAI, Azure OpenAI, Anthropic, "
        "Gemini, Vertex AI, Bedrock runtime, Mistral, Groq, DeepSeek, OpenRouter, xAI, Together, Fireworks, "
        "Cohere, and Ollama/vLLM/llama.cpp/LM Studio on localhost. Setting it replaces that list."))
    extra_endpoints: list[EndpointRule] = field(default_factory=list, metadata=doc(
        "More endpoints, added to `endpoints` (use this to add your own gateway without repeating the defaults)."))
    include: ProcessFilter = field(default_factory=ProcessFilter, metadata=doc(
        "Trace only processes matching any of these (empty: every process)."))
    exclude: ProcessFilter = field(default_factory=ProcessFilter, metadata=doc(
        "Never trace processes matching any of these. llmtap's own process is always excluded."))
    headers: HeaderAllowList = field(default_factory=HeaderAllowList, metadata=doc(
        "Which headers are captured."))
    max_body_bytes: ByteSize = field(default=ByteSize(16 * MIB), metadata=doc(
        "Largest body kept per request or response; longer ones are cut and marked truncated."))
    ring_buffer_size: ByteSize = field(default=ByteSize(64 * MIB), metadata=doc(
        "Kernel ring buffer between the probes and llmtap; a power of two. Larger absorbs longer bursts."))
    attach: list[str] = field(default_factory=list, metadata=doc(
        "More files to attach to at start (a libssl, or a binary that exports OpenSSL's SSL_* symbols), "
        "besides the system libssl, `node` on PATH, and what running processes map. A file here that exports "
        "no SSL_* symbols is searched for a statically linked BoringSSL as Bun executables are."))
    static_boringssl: Literal["auto", "off"] = field(default="auto", metadata=doc(
        "`auto`: a Bun single-file executable (an ELF with a `.bun` section, such as Claude Code's `claude`) "
        "that exports no SSL_* symbols is searched for the SSL_write/SSL_read of the BoringSSL linked into it, "
        "by BoringSSL's error-reporting call sites; when its code has an unexpected shape nothing is attached "
        "(logged at info). It costs 0.1 to 0.3 s once per such file, at its first exec. `off`: attach by "
        "exported symbols only."))
    processes: ProcessCapture = field(default_factory=ProcessCapture, metadata=doc(
        "Process capture: which processes are reported as spans, and the process tree on every span."))
    service_name: str = field(default="", metadata=doc(
        "service.name of the spans; empty: the traced executable's name."))
    required: bool = field(default=False, metadata=doc(
        "Fail at start when eBPF cannot be used. When false, llmtap warns and runs without this receiver. "
        "The environment variable LLMTAP_REQUIRE_EBPF=1 sets it."))

    def validate(self) -> list[str]:
        errors = []
        size = int(self.ring_buffer_size)
        if size < 4096 or size & (size - 1):
            errors.append(f"ring_buffer_size: must be a power of two of at least 4KiB; got {size}")
        if self.max_body_bytes <= 0:
            errors.append("max_body_bytes: must be positive")
        return errors
