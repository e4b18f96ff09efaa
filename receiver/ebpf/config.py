"""The `ebpf` receiver's config."""

from __future__ import annotations

from dataclasses import dataclass, field

from llmtap.configtypes import ByteSize, doc
from llmtap.receiver.ebpf.endpoints import EndpointRule, default_rules
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
        "besides the system libssl, `node` on PATH, and what running processes map."))
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
