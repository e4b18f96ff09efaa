"""Token counts of a model call from its GenAI semconv content, the way OpenAI's chat format
lays a conversation out for the model.

The model does not read the JSON of a request: it reads each message framed by special tokens
(`<|start|>{role}<|message|>{content}<|end|>`), the function tools rendered as a TypeScript
namespace in the system message, and a primer for the reply (`<|start|>assistant`). So the
prompt costs the tokens of the texts plus a fixed framing per message, per name and per reply,
and the tools cost their rendering. The framing constants of a `ChatFormat` are measured
against the usage the API reported for known requests (tests/test_token_count.py holds that
corpus and the tolerances), after OpenAI's cookbook "How to count tokens with tiktoken"; the
tool rendering follows the published harmony format (openai/harmony), with which the
reported counts of the cookbook's tool example come out exact.

Input: `gen_ai.system_instructions` (as one system message), `gen_ai.input.messages`,
`gen_ai.tool.definitions`. Output: `gen_ai.output.messages` — text, refusals, reasoning text
and tool calls (name and arguments), plus the end-of-message token a finished reply costs.
What is not text is not counted: images, audio and files (their cost depends on their pixels
and seconds, which the span does not carry), and hidden reasoning that the provider did not
return (then the output count is a lower bound; the reported reasoning tokens never are).

Cost: one tokenizer call per text part, one walk over the parsed content.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable

Count = Callable[[str], int]  # text → tokens (encode_ordinary: special-token text is plain text)


@dataclass(frozen=True)
class ChatFormat:
    """The framing a model family adds around the texts, in tokens."""

    name: str
    per_message: int = 3  # <|start|>, <|message|>, <|end|> around each message
    per_role: bool = True  # whether the role's name is there too (as text)
    per_name: int = 1  # a message's `name`, besides its text
    reply_priming: int = 3  # <|start|>assistant<|message|>, which the reply is generated after
    per_tool_call: int = 8  # a tool call in the history: its own message, recipient, <|call|>
    tools_overhead: int = -1  # the tools section, besides its rendered text
    output_per_tool_call: int = 7  # a generated tool call, besides its name and arguments
    output_end: int = 0  # what a finished text reply is charged besides its text


# Measured against reported usage (tests/test_token_count.py). GPT-3.5-turbo (0613 and
# later), GPT-4, GPT-4o, GPT-4.1, GPT-4.5: the cookbook's 3 per message, 1 per name, 3 to prime.
# The API charged a finished reply one token for <|end|> until 2026 and no longer does (the
# newer recordings): 0, and the older ones are off by that one token.
CHAT = ChatFormat("chat")
# o1 / o3 / o4 / GPT-5 prime the reply with one token less (o3-mini, o4-mini, gpt-5).
REASONING = ChatFormat("reasoning", reply_priming=2)
# gpt-3.5-turbo-0301: <|im_start|>{role or name}\n{content}<|im_end|>\n, a name replaces the role.
CHATML_0301 = ChatFormat("chatml-0301", per_message=4, per_name=-1)
# Text in, no chat: legacy completions and embeddings count their texts alone.
PLAIN = ChatFormat("plain", per_message=0, per_role=False, per_name=0, reply_priming=0, per_tool_call=0,
                   tools_overhead=0, output_per_tool_call=0)


def parse_content(value: Any) -> Any:
    """A content attribute's value: JSON text (as genai_semconv writes it), or already parsed."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    return json.loads(value) if isinstance(value, str) else value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    # genai_semconv parses tool arguments and structured results into values; the model saw
    # them as JSON text, compact or spaced, which the span no longer tells: compact, as OpenAI
    # models write arguments.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _dicts(value: Any) -> list[dict]:
    return [x for x in value if isinstance(x, dict)] if isinstance(value, list) else []


def _parts_tokens(parts: Any, count: Count, per_tool_call: int) -> int:
    tokens = 0
    for part in _dicts(parts):
        kind = part.get("type")
        if kind in ("text", "reasoning", "refusal"):
            tokens += count(_as_text(part.get("content")))
        elif kind == "tool_call":
            tokens += per_tool_call + count(_as_text(part.get("name"))) + count(_as_text(part.get("arguments")))
        elif kind == "tool_call_response":
            tokens += count(_as_text(part.get("response")))
    return tokens


def input_tokens(system_instructions: Any, messages: Any, tool_definitions: Any, count: Count,
                 fmt: ChatFormat) -> int:
    """Prompt tokens of a request from its parsed content attributes (None: absent)."""
    def framing(role: str) -> int:
        return fmt.per_message + (count(role) if fmt.per_role else 0)

    tokens = fmt.reply_priming
    if _dicts(system_instructions):
        tokens += framing("system") + _parts_tokens(system_instructions, count, fmt.per_tool_call)
    for message in _dicts(messages):
        tokens += framing(_as_text(message.get("role") or "user"))
        name = message.get("name")
        if isinstance(name, str) and name:
            tokens += fmt.per_name + count(name)
        tokens += _parts_tokens(message.get("parts"), count, fmt.per_tool_call)
    functions = [t for t in _dicts(tool_definitions) if t.get("type", "function") == "function"]
    if functions:
        tokens += fmt.tools_overhead + count(render_function_tools(functions))
    return tokens


def output_tokens(messages: Any, count: Count, fmt: ChatFormat) -> int:
    """Completion tokens of a response from its parsed `gen_ai.output.messages`."""
    tokens = 0
    for message in _dicts(messages):
        tokens += _parts_tokens(message.get("parts"), count, fmt.output_per_tool_call)
        if message.get("finish_reason") == "stop":
            tokens += fmt.output_end
    return tokens


# ---- tools as the model sees them: a TypeScript namespace (harmony format) ---------------------

def render_function_tools(functions: Iterable[dict]) -> str:
    """`# Tools` / `## functions` / `namespace functions { … }` for function tool definitions
    ({type, name, description, parameters} as gen_ai.tool.definitions holds them)."""
    lines = ["## functions\n", "namespace functions {\n"]
    for function in functions:
        description = function.get("description")
        if isinstance(description, str):
            lines += [f"// {line}" for line in description.splitlines()]
        parameters = function.get("parameters")
        name = _as_text(function.get("name"))
        if isinstance(parameters, dict):
            lines.append(f"type {name} = (_: {_typescript(parameters, '')}) => any;\n")
        else:
            lines.append(f"type {name} = () => any;\n")
    lines.append("} // namespace functions")
    return "# Tools\n\n" + "\n".join(lines)


def _default_comment(schema: dict) -> str:
    if "default" not in schema:
        return ""
    default = schema["default"]
    if isinstance(default, str):
        return f" // default: {default}" if schema.get("enum") else f' // default: "{default}"'
    return f" // default: {json.dumps(default)}"


def _typescript(schema: Any, indent: str) -> str:
    """A JSON schema as a TypeScript type, as harmony renders tool parameters."""
    if not isinstance(schema, dict):
        return "any"
    variants = schema.get("oneOf") or schema.get("anyOf")
    if isinstance(variants, list) and variants:
        return "".join(f"\n{indent} | {_typescript(v, indent + '   ')}" for v in variants)
    kind = schema.get("type")
    if isinstance(kind, list):
        names = ["number" if k == "integer" else str(k) for k in kind]
        return " | ".join(names) if names else "any"
    if kind == "object":
        out = f"{indent}// {schema['description']}\n" if isinstance(schema.get("description"), str) else ""
        out += "{\n"
        properties = schema.get("properties")
        required = set(schema.get("required") or ()) if isinstance(schema.get("required"), list) else set()
        for key, value in properties.items() if isinstance(properties, dict) else ():
            value = value if isinstance(value, dict) else {}
            if isinstance(value.get("title"), str):
                out += f"{indent}// {value['title']}\n{indent}//\n"
            if isinstance(value.get("description"), str):
                out += f"{indent}// {value['description']}\n"
            optional = "" if key in required else "?"
            variants = value.get("oneOf") or value.get("anyOf")
            if isinstance(variants, list) and variants:  # one variant per line under the name
                out += f"{indent}{key}{optional}:\n"
                for variant in variants:
                    comment = variant.get("description") if isinstance(variant, dict) else None
                    out += f"{indent} | {_typescript(variant, indent + '   ')}"
                    out += f" // {comment}\n" if isinstance(comment, str) else "\n"
                out += f"{indent},\n"
                continue
            type_text = _typescript(value, indent + "    ")
            if value.get("nullable") is True and "null" not in type_text:
                type_text += " | null"
            out += f"{indent}{key}{optional}: {type_text},{_default_comment(value)}\n"
        return out + f"{indent}}}"
    if kind == "string":
        enum = [v for v in schema.get("enum") or () if isinstance(v, str)]
        return " | ".join(f'"{v}"' for v in enum) if enum else "string"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        items = schema.get("items")
        return f"{_typescript(items, indent)}[]" if items is not None else "Array<any>"
    if kind == "null":
        return "null"
    return "any"
