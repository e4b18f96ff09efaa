"""Which API an HTTP exchange speaks, and which GenAI provider served it.

`detect_api` names the wire format (one of `APIS`) from the request path, and
failing that from the shape of the request and response bodies; `detect_provider`
gives the `gen_ai.provider.name` for it, in this order:

1. the host: a table of the providers' public API hosts (well-known values of
   the spec where one exists, else a custom value such as `openrouter`);
2. the path, where it names the platform: Azure OpenAI's `/openai/deployments/…`,
   Vertex AI's `/projects/{p}/locations/{l}/…`, Bedrock's `/model/{id}/invoke`;
3. headers only one provider sends: `anthropic-version` / `anthropic-ratelimit-*`, `x-groq-*`,
   `openai-organization` / `openai-processing-ms` / `openai-version` (the eBPF receiver's
   default allow-list keeps the anthropic and openai ones);
4. the API's family: an unknown host speaking OpenAI's format (vLLM, llama.cpp,
   LiteLLM, a local gateway) is `openai`, as opentelemetry-instrumentation-openai-v2
   reports for any endpoint its client talks to; Anthropic's format is `anthropic`;
   Gemini's is `gcp.gen_ai` (the spec's value for a Google endpoint whose backend is
   unknown); Ollama's native API is `ollama`.
Costs: a few string operations per exchange; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import unquote

OPENAI_CHAT = "openai.chat_completions"
OPENAI_COMPLETIONS = "openai.completions"
OPENAI_RESPONSES = "openai.responses"
OPENAI_EMBEDDINGS = "openai.embeddings"
ANTHROPIC_MESSAGES = "anthropic.messages"
GEMINI_GENERATE = "gemini.generate_content"
GEMINI_EMBED = "gemini.embed_content"
OLLAMA_CHAT = "ollama.chat"
OLLAMA_GENERATE = "ollama.generate"
OLLAMA_EMBED = "ollama.embed"

APIS = (OPENAI_CHAT, OPENAI_COMPLETIONS, OPENAI_RESPONSES, OPENAI_EMBEDDINGS, ANTHROPIC_MESSAGES,
        GEMINI_GENERATE, GEMINI_EMBED, OLLAMA_CHAT, OLLAMA_GENERATE, OLLAMA_EMBED)

# gen_ai.operation.name per API (the spec's well-known values).
OPERATIONS = {
    OPENAI_CHAT: "chat", OPENAI_RESPONSES: "chat", ANTHROPIC_MESSAGES: "chat", OLLAMA_CHAT: "chat",
    OPENAI_COMPLETIONS: "text_completion", OLLAMA_GENERATE: "text_completion",
    GEMINI_GENERATE: "generate_content",
    OPENAI_EMBEDDINGS: "embeddings", GEMINI_EMBED: "embeddings", OLLAMA_EMBED: "embeddings",
}

_FAMILY_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gen_ai", "ollama": "ollama"}

# Exact hosts, then suffixes (checked in order; the first match wins).
_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gcp.gemini",
    "api.groq.com": "groq",
    "api.deepseek.com": "deepseek",
    "api.mistral.ai": "mistral_ai",
    "codestral.mistral.ai": "mistral_ai",
    "api.x.ai": "x_ai",
    "api.perplexity.ai": "perplexity",
    "api.cohere.com": "cohere",
    "api.cohere.ai": "cohere",
    "openrouter.ai": "openrouter",
    "api.together.xyz": "together_ai",
    "api.together.ai": "together_ai",
    "api.fireworks.ai": "fireworks_ai",
    "api.moonshot.ai": "moonshot_ai",
    "api.moonshot.cn": "moonshot_ai",
    "api.cerebras.ai": "cerebras",
}
_HOST_SUFFIXES = (
    (".openai.azure.com", "azure.ai.openai"),
    (".cognitiveservices.azure.com", "azure.ai.openai"),
    (".services.ai.azure.com", "azure.ai.inference"),
    (".inference.ai.azure.com", "azure.ai.inference"),
    (".models.ai.azure.com", "azure.ai.inference"),
    ("aiplatform.googleapis.com", "gcp.vertex_ai"),
    (".amazonaws.com", "aws.bedrock"),  # bedrock-runtime.<region>.amazonaws.com, checked below
    (".ml.cloud.ibm.com", "ibm.watsonx.ai"),
)
OLLAMA_PORT = 11434

_GEMINI_METHOD = re.compile(
    r"/models/([^/:]+):(generateContent|streamGenerateContent|embedContent|batchEmbedContents)$")
_VERTEX_PATH = re.compile(r"/projects/[^/]+/locations/[^/]+/")
_BEDROCK_INVOKE = re.compile(r"/model/([^/]+)/(invoke|invoke-with-response-stream)$")
_VERTEX_RAW_PREDICT = re.compile(r"/publishers/anthropic/models/([^/:]+):(rawPredict|streamRawPredict)$")


@dataclass(frozen=True)
class Api:
    """The wire format of an exchange and what its path says beyond it."""

    name: str
    path_model: str | None = None  # Gemini, Bedrock and Vertex name the model in the path
    streaming_path: bool = False  # :streamGenerateContent, invoke-with-response-stream, …

    @property
    def family(self) -> str:
        return self.name.partition(".")[0]

    @property
    def operation(self) -> str:
        return OPERATIONS[self.name]


def detect_api(method: str, path: str, request: Any, response: Any) -> Api | None:
    """The API from the path, else from the body shapes; None for anything that is not a model call."""
    path = path.split("?", 1)[0].rstrip("/")
    if method and method.upper() != "POST":
        return None
    if m := _GEMINI_METHOD.search(path):
        name = GEMINI_GENERATE if m.group(2) in ("generateContent", "streamGenerateContent") else GEMINI_EMBED
        return Api(name, unquote(m.group(1)), m.group(2) == "streamGenerateContent")
    if m := _VERTEX_RAW_PREDICT.search(path):
        return Api(ANTHROPIC_MESSAGES, m.group(1), m.group(2) == "streamRawPredict")
    if m := _BEDROCK_INVOKE.search(path):
        if _looks_anthropic(request):
            return Api(ANTHROPIC_MESSAGES, unquote(m.group(1)), m.group(2) != "invoke")
        return None
    for suffix, name in (("/chat/completions", OPENAI_CHAT), ("/completions", OPENAI_COMPLETIONS),
                         ("/responses", OPENAI_RESPONSES), ("/embeddings", OPENAI_EMBEDDINGS),
                         ("/api/chat", OLLAMA_CHAT), ("/api/generate", OLLAMA_GENERATE),
                         ("/api/embed", OLLAMA_EMBED)):
        if path.endswith(suffix):
            if name == OPENAI_EMBEDDINGS and path.endswith("/api/embeddings"):
                return Api(OLLAMA_EMBED)
            return Api(name)
    if path.endswith("/messages") and "/threads/" not in path:  # not OpenAI Assistants' thread messages
        return Api(ANTHROPIC_MESSAGES)
    return _api_from_shapes(request, response)


def _looks_anthropic(request: Any) -> bool:
    return isinstance(request, dict) and ("anthropic_version" in request or (
        "messages" in request and "max_tokens" in request and "model" not in request))


def _api_from_shapes(request: Any, response: Any) -> Api | None:
    """Unknown paths (gateways, proxies with their own routes): what the bodies look like. A
    response that is there and is no error decides alone (Anthropic's count_tokens takes a
    messages request, and answers no completion); the request decides only without one."""
    if isinstance(response, dict) and "error" not in response and response.get("type") != "error":
        obj, kind = response.get("object"), response.get("type")
        if obj in ("chat.completion", "chat.completion.chunk"):
            return Api(OPENAI_CHAT)
        if obj == "text_completion":
            return Api(OPENAI_COMPLETIONS)
        if obj == "response":
            return Api(OPENAI_RESPONSES)
        if obj == "list" and isinstance(response.get("data"), list) and response["data"] \
                and isinstance(response["data"][0], dict) and response["data"][0].get("object") == "embedding":
            return Api(OPENAI_EMBEDDINGS)
        if kind == "message" and "content" in response and "stop_reason" in response:
            return Api(ANTHROPIC_MESSAGES)
        if "candidates" in response or "usageMetadata" in response:
            return Api(GEMINI_GENERATE)
        if "done" in response and "message" in response:
            return Api(OLLAMA_CHAT)
        if "done" in response and "response" in response:
            return Api(OLLAMA_GENERATE)
        return None
    if isinstance(request, dict):
        if "contents" in request:
            return Api(GEMINI_GENERATE)
        if _looks_anthropic(request):
            return Api(ANTHROPIC_MESSAGES)
        if "messages" in request and "model" in request:
            return Api(OPENAI_CHAT)
    return None


def detect_provider(api: Api, host: str, port: int | None, path: str,
                    request_headers: Mapping[str, Any], response_headers: Mapping[str, Any]) -> str:
    host = (host or "").lower().rstrip(".")
    if provider := _HOSTS.get(host):
        return provider
    for suffix, provider in _HOST_SUFFIXES:
        if host.endswith(suffix):
            if provider == "aws.bedrock" and not host.startswith("bedrock"):
                continue
            return provider
    if "/openai/deployments/" in path:
        return "azure.ai.openai"
    if _VERTEX_PATH.search(path):
        return "gcp.vertex_ai"
    if _BEDROCK_INVOKE.search(path.split("?", 1)[0]):
        return "aws.bedrock"
    if "anthropic-version" in request_headers or any(h.startswith("anthropic-") for h in response_headers):
        return "anthropic"
    if any(h.startswith("x-groq") for h in response_headers):  # x-groq-region (when allow-listed)
        return "groq"
    if any(h in response_headers for h in ("openai-organization", "openai-processing-ms", "openai-version")):
        return "openai"
    if api.family == "ollama" or port == OLLAMA_PORT:
        return "ollama"
    return _FAMILY_PROVIDER[api.family]
