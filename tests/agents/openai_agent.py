"""An agent made with the OpenAI Agents SDK (PyPI `openai-agents`) and one shell tool.

    python tests/agents/openai_agent.py --base-url URL --ca CA_FILE --prompt TEXT
                                        [--api responses|chat] [--stream] [--max-turns N]

The agent's model is the local test server (tests/llm_server.py), reached over TLS with
the official `openai` SDK the Agents SDK is built on; a scripted conversation there
decides which commands the model asks for. The tool `run_shell` really runs them, each as
`bash -c COMMAND` in a child process, and hands back the exit code and output, as a
coding agent's shell tool does. The SDK's own trace export is off (it would call out to
the network).

The last line on stdout is a JSON summary: {"pid", "final_output", "runs": [{"command",
"pid", "exit_code", "output"}], "turns"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import subprocess
import sys

import httpx2
from agents import (Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, function_tool,
                    set_tracing_disabled)
from openai import AsyncOpenAI

INSTRUCTIONS = "You are a terse operations agent. Use run_shell to run commands; report what they showed."
runs: list[dict] = []


@function_tool
def run_shell(command: str) -> str:
    """Run one shell command and return its exit code and combined output.

    Args:
        command: the command line, run by bash.
    """
    proc = subprocess.Popen(["bash", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    output, _ = proc.communicate(timeout=60)
    text = output.decode(errors="replace")
    runs.append({"command": command, "pid": proc.pid, "exit_code": proc.returncode, "output": text[-2000:]})
    return f"exit code {proc.returncode}\n{text[-4000:]}"


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--api", choices=("responses", "chat"), default="responses")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--max-turns", type=int, default=20)
    args = parser.parse_args(argv)

    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=args.base_url + "/v1", api_key=os.environ["OPENAI_API_KEY"], max_retries=0,
                         http_client=httpx2.AsyncClient(verify=ssl.create_default_context(cafile=args.ca)))
    model_class = OpenAIResponsesModel if args.api == "responses" else OpenAIChatCompletionsModel
    agent = Agent(name="ops-agent", instructions=INSTRUCTIONS, tools=[run_shell],
                  model=model_class(model=args.model, openai_client=client))
    if args.stream:
        result = Runner.run_streamed(agent, args.prompt, max_turns=args.max_turns)
        async for _ in result.stream_events():
            pass
    else:
        result = await Runner.run(agent, args.prompt, max_turns=args.max_turns)
    summary = {"pid": os.getpid(), "final_output": result.final_output, "runs": runs,
               "turns": len(result.raw_responses)}
    print(json.dumps(summary, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
