"""Scripted conversations of tests/llm_server.py, checked on their own (no eBPF): a prompt
that names a script gets that script's turns, in each provider's own tool-call format,
streamed and not. The official SDKs (openai, anthropic) are the oracle: what they assemble
from the server's bytes is the tool call the script asked for, and after the tool result
comes back, the script's next turn. Gemini has no SDK here; its bytes are checked against
the API's documented shape and against each other (JSON, SSE, array stream)."""

from __future__ import annotations

import json
import ssl

import anthropic
import httpx2
import openai
import pytest

from llm_server import Knobs, LlmServer, Request, plan_response, scripted_reply

LS = {"name": "run_shell", "arguments": {"command": "ls -la /tmp"}}
CURL = {"name": "run_shell", "arguments": {"command": "curl -sS https://localhost/healthz"}}
SCRIPTS = {
    "ls-then-curl": [{"text": "Looking first.", "tool_calls": [LS]}, {"tool_calls": [CURL]},
                     {"text": "Both ran: the folder is listed and the server is healthy."}],
    "both-at-once": [{"tool_calls": [LS, CURL]}, {"text": "Ran both."}],
}
SHELL_TOOL = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}


@pytest.fixture(scope="module")
def server():
    with LlmServer(scripts=SCRIPTS) as s:
        yield s
        assert "Traceback" not in s.stderr(), s.stderr()


def verify(server) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=server.ca_file)


@pytest.fixture(scope="module")
def openai_client(server):
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="sk-test", max_retries=0,
                         http_client=httpx2.Client(verify=verify(server)))


@pytest.fixture(scope="module")
def anthropic_client(server):
    return anthropic.Anthropic(base_url=server.base_url, api_key="sk-ant-test", max_retries=0,
                               http_client=httpx2.Client(verify=verify(server)))


PROMPT = "Check the folder and the server [llmtap-script:ls-then-curl]"


# --- choosing the turn: from the request alone -----------------------------------------


def req(payload: dict, seq: int = 1) -> Request:
    return Request("POST", "/v1/chat/completions", [], json.dumps(payload).encode(), seq)


@pytest.mark.parametrize("history,turn", [
    # OpenAI Chat Completions: tool results are role "tool" messages
    ([{"role": "user", "content": PROMPT}], 0),
    ([{"role": "user", "content": PROMPT}, {"role": "assistant", "tool_calls": [{"id": "c1"}]},
      {"role": "tool", "tool_call_id": "c1", "content": "x"}], 1),
    # Anthropic: tool_result blocks in a user message
    ([{"role": "user", "content": [{"type": "text", "text": PROMPT}]},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "run_shell", "input": {}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "t2", "name": "run_shell", "input": {}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t2", "content": "ok"}]}], 2),
])
def test_the_turn_is_the_number_of_tool_results_carried_back(history, turn):
    reply = scripted_reply(req({"messages": history}), {"messages": history}, SCRIPTS, "call_")
    expected = SCRIPTS["ls-then-curl"][turn]
    assert reply.text == expected.get("text", "")
    assert [(c.name, c.arguments) for c in reply.tool_calls] == \
        [(c["name"], c["arguments"]) for c in expected.get("tool_calls", [])]


def test_responses_and_gemini_histories_count_too():
    responses = {"input": [{"role": "user", "content": [{"type": "input_text", "text": PROMPT}]},
                           {"type": "function_call", "call_id": "c1", "name": "run_shell", "arguments": "{}"},
                           {"type": "function_call_output", "call_id": "c1", "output": "x"}]}
    assert scripted_reply(req(responses), responses, SCRIPTS, "call_").tool_calls[0].arguments == CURL["arguments"]
    gemini = {"contents": [{"role": "user", "parts": [{"text": "context"}, {"text": PROMPT}]},
                           {"role": "model", "parts": [{"functionCall": {"name": "run_shell", "args": {}}}]},
                           {"role": "user", "parts": [{"functionResponse": {"name": "run_shell", "response": {}}}]},
                           {"role": "model", "parts": [{"functionCall": {"name": "run_shell", "args": {}}}]},
                           {"role": "user", "parts": [{"functionResponse": {"name": "run_shell", "response": {}}}]}]}
    assert scripted_reply(req(gemini), gemini, SCRIPTS, "").text.startswith("Both ran")


def test_parallel_calls_finish_a_turn_only_when_all_results_are_back():
    def after(results: int):
        history = [{"role": "user", "content": "[llmtap-script:both-at-once]"}]
        history += [{"role": "tool", "tool_call_id": f"c{i}", "content": "x"} for i in range(results)]
        return scripted_reply(req({"messages": history}), {"messages": history}, SCRIPTS, "call_")
    assert [c.arguments["command"] for c in after(0).tool_calls] == ["ls -la /tmp", "curl -sS https://localhost/healthz"]
    assert len(after(1).tool_calls) == 2          # one result of two: the same turn again
    assert after(2).text == "Ran both." and after(2).tool_calls == []
    assert after(3).text == "Ran both."           # a text turn answers every later request too


def test_a_script_that_ends_in_tool_calls_then_says_it_is_over():
    scripts = {"calls-only": [{"tool_calls": [LS]}]}
    history = [{"role": "user", "content": "[llmtap-script:calls-only]"},
               {"role": "tool", "tool_call_id": "c0", "content": "x"}]
    reply = scripted_reply(req({"messages": history}), {"messages": history}, scripts, "call_")
    assert reply.text == "The script calls-only is over." and reply.tool_calls == []


def test_call_ids_differ_between_requests_and_calls():
    history = {"messages": [{"role": "user", "content": "[llmtap-script:both-at-once]"}]}
    ids = [c.id for seq in (1, 2) for c in scripted_reply(req(history, seq), history, SCRIPTS, "call_").tool_calls]
    assert len(set(ids)) == 4 and all(i.startswith("call_") and len(i) == 29 for i in ids)


def test_an_unknown_script_is_a_400_in_the_providers_error_format():
    payload = {"model": "m", "max_tokens": 9, "messages": [{"role": "user", "content": "[llmtap-script:nope]"}]}
    r = Request("POST", "/v1/messages", [], json.dumps(payload).encode(), 3)
    plan = plan_response(r, Knobs.from_request(r), SCRIPTS)
    assert plan.status == 400
    body = json.loads(plan.events[0])
    assert body["type"] == "error" and "no script 'nope'" in body["error"]["message"]


def test_without_a_marker_the_server_answers_as_before():
    payload = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    r = req(payload)
    body = json.loads(plan_response(r, Knobs.from_request(r), SCRIPTS).events[0])
    assert body["choices"][0]["message"]["content"].endswith("You said: hi")
    assert "tool_calls" not in body["choices"][0]["message"]


# --- the SDKs assemble the server's tool calls ------------------------------------------


CHAT_TOOLS = [{"type": "function", "function": {"name": "run_shell", "parameters": SHELL_TOOL}}]


@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_tool_call_round_trip(openai_client, stream):
    def ask(messages):
        if not stream:
            return openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=CHAT_TOOLS)
        with openai_client.chat.completions.stream(model="gpt-4o-mini", messages=messages, tools=CHAT_TOOLS,
                                                   stream_options={"include_usage": True}) as s:
            for _ in s:
                pass
            return s.get_final_completion()

    messages = [{"role": "user", "content": PROMPT}]
    for want in ("ls -la /tmp", "curl -sS https://localhost/healthz"):
        choice = ask(messages).choices[0]
        assert choice.finish_reason == "tool_calls"
        [call] = choice.message.tool_calls
        assert call.function.name == "run_shell" and json.loads(call.function.arguments) == {"command": want}
        assert call.id.startswith("call_")
        messages += [choice.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": "exit code 0"}]
    final = ask(messages).choices[0]
    assert final.finish_reason == "stop" and final.message.content.startswith("Both ran")
    assert not final.message.tool_calls


@pytest.mark.parametrize("stream", [False, True])
def test_openai_responses_function_call_round_trip(openai_client, stream):
    tools = [{"type": "function", "name": "run_shell", "parameters": SHELL_TOOL, "strict": False}]

    def ask(items):
        if not stream:
            return openai_client.responses.create(model="gpt-4o-mini", input=items, tools=tools)
        with openai_client.responses.stream(model="gpt-4o-mini", input=items, tools=tools) as s:
            for _ in s:
                pass
            return s.get_final_response()

    items: list = [{"role": "user", "content": PROMPT}]
    first = ask(items)
    message, call = first.output
    assert message.type == "message" and message.content[0].text == "Looking first."
    assert call.type == "function_call" and call.name == "run_shell" and call.status == "completed"
    assert json.loads(call.arguments) == LS["arguments"]
    items += [call.model_dump(exclude_none=True), {"type": "function_call_output", "call_id": call.call_id,
                                                   "output": "exit code 0"}]
    [second] = ask(items).output
    assert json.loads(second.arguments) == CURL["arguments"]
    items += [second.model_dump(exclude_none=True), {"type": "function_call_output", "call_id": second.call_id,
                                                     "output": "ok"}]
    assert ask(items).output_text.startswith("Both ran")


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_use_round_trip(anthropic_client, stream):
    tools = [{"name": "run_shell", "input_schema": SHELL_TOOL}]

    def ask(messages):
        if not stream:
            return anthropic_client.messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=messages,
                                                    tools=tools)
        with anthropic_client.messages.stream(model="claude-sonnet-4-5", max_tokens=256, messages=messages,
                                              tools=tools) as s:
            for _ in s:
                pass
            return s.get_final_message()

    messages = [{"role": "user", "content": PROMPT}]
    first = ask(messages)
    assert first.stop_reason == "tool_use"
    text, use = first.content
    assert text.type == "text" and text.text == "Looking first."
    assert use.type == "tool_use" and use.name == "run_shell" and use.input == LS["arguments"]
    assert use.id.startswith("toolu_01")
    messages += [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "0"}]}]
    second = ask(messages)
    [use2] = second.content
    assert use2.input == CURL["arguments"]
    messages += [{"role": "assistant", "content": [use2.model_dump()]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use2.id, "content": "ok"}]}]
    final = ask(messages)
    assert final.stop_reason == "end_turn" and final.content[0].text.startswith("Both ran")


# --- Gemini -----------------------------------------------------------------------------


GEMINI = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
          "tools": [{"functionDeclarations": [{"name": "run_shell", "parameters": SHELL_TOOL}]}]}


def gemini_plan(method: str, query: str = ""):
    path = f"/v1beta/models/gemini-2.5-flash:{method}" + (f"?{query}" if query else "")
    r = Request("POST", path, [("content-type", "application/json")], json.dumps(GEMINI).encode(), 5)
    return plan_response(r, Knobs.from_request(r), SCRIPTS)


def test_gemini_generate_content_answers_a_function_call():
    plan = gemini_plan("generateContent")
    body = json.loads(b"".join(plan.events))
    [candidate] = body["candidates"]
    assert candidate["content"]["role"] == "model" and candidate["finishReason"] == "STOP"
    assert candidate["content"]["parts"] == [{"text": "Looking first."},
                                             {"functionCall": {"name": "run_shell", "args": LS["arguments"]}}]
    usage = body["usageMetadata"]
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert body["modelVersion"] == "gemini-2.5-flash" and body["responseId"]


def test_gemini_streams_carry_the_same_parts_as_the_json_answer():
    whole = json.loads(b"".join(gemini_plan("generateContent").events))["candidates"][0]["content"]["parts"]
    sse = gemini_plan("streamGenerateContent", "alt=sse")
    assert sse.streaming and ("content-type", "text/event-stream") in sse.headers
    assert all(e.startswith(b"data: ") and e.endswith(b"\r\n\r\n") for e in sse.events)
    chunks = [json.loads(e[len(b"data: "):]) for e in sse.events]
    array = json.loads(b"".join(gemini_plan("streamGenerateContent").events))
    for stream in (chunks, array):
        parts = [p for c in stream for p in c["candidates"][0]["content"]["parts"]]
        text = "".join(p.get("text", "") for p in parts)
        assert text == whole[0]["text"] and [p for p in parts if "functionCall" in p] == whole[1:]
        assert "finishReason" in stream[-1]["candidates"][0]
        assert all("finishReason" not in c["candidates"][0] for c in stream[:-1])


def test_gemini_count_tokens_and_errors():
    assert json.loads(gemini_plan("countTokens").events[0])["totalTokens"] > 0
    r = Request("POST", "/v1beta/models/gemini-2.5-flash:generateContent", [("x-test-status", "429")], b"{}", 9)
    plan = plan_response(r, Knobs.from_request(r))
    assert plan.status == 429
    assert json.loads(plan.events[0])["error"] == {"code": 429, "message": "Request failed.",
                                                   "status": "RESOURCE_EXHAUSTED"}


def test_scripts_added_while_the_server_runs_are_used(server, openai_client):
    marker = server.add_script("late", [{"text": "A late script answers."}])
    reply = openai_client.chat.completions.create(model="gpt-4o-mini",
                                                  messages=[{"role": "user", "content": f"go {marker}"}])
    assert reply.choices[0].message.content == "A late script answers."
