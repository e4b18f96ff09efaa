// Traffic source: the official `openai` npm package (pinned in package.json) on
// Node's global fetch, so HTTP/1.1 (node 20's fetch offers no h2). The CA comes
// from NODE_EXTRA_CA_CERTS (read by node at start-up); the key from OPENAI_API_KEY.
//
//   node tests/llm_clients/openai_node.mjs --base-url URL --ca CA --scenario NAME
//        [--count N] [--header 'name: value'] [--prompt TEXT] [--model M] [--max-retries N]
//
// Scenarios:
//   chat                non-streamed chat completion
//   chat_stream         chat.completions.stream() with include_usage; finalChatCompletion()
//   responses_stream    responses.stream(); finalResponse()
//   models              models.list()
//   concurrent_streams  --count chat_stream requests at once (Promise.all)
// Prints {"client": "openai_node", "scenario", "pid", "sdk_version", "results": [...]};
// a result has "prompt" and the SDK-assembled "content", "usage", ... or "error".

import process from "node:process";
import OpenAI from "openai";
import { VERSION } from "openai/version";

const SYSTEM_PROMPT = "You are a terse test assistant.";
const SCENARIOS = ["chat", "chat_stream", "responses_stream", "models", "concurrent_streams"];

function parseArgs(argv) {
  const args = { count: 1, header: [], prompt: "Say hello to llmtap", model: null, maxRetries: "0" };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const value = argv[++i];
    if (key === "header") args.header.push(value);
    else if (key === "count") args.count = Number(value);
    else args[key] = value;
  }
  if (!args.baseUrl || !SCENARIOS.includes(args.scenario)) {
    process.stderr.write(`usage: openai_node.mjs --base-url URL --ca CA --scenario ${SCENARIOS.join("|")}\n`);
    process.exit(2);
  }
  if (args.ca && process.env.NODE_EXTRA_CA_CERTS !== args.ca) {
    process.stderr.write("openai_node.mjs: set NODE_EXTRA_CA_CERTS to the --ca file\n");
    process.exit(2);
  }
  args.headers = Object.fromEntries(args.header.map((h) => {
    const at = h.indexOf(":");
    return [h.slice(0, at).trim(), h.slice(at + 1).trim()];
  }));
  return args;
}

const promptOf = (args, i) => `${args.prompt} #${process.pid}-${i}`;

function describeError(err) {
  const out = { type: err.constructor?.name || err.name, message: String(err.message).slice(0, 500) };
  if (err.status !== undefined) out.status = err.status;
  if (err.error !== undefined) out.body = err.error;
  if (err.headers) out.headers = Object.fromEntries(err.headers.entries?.() ?? Object.entries(err.headers));
  return out;
}

const messages = (prompt) => [{ role: "system", content: SYSTEM_PROMPT }, { role: "user", content: prompt }];

async function chat(client, args, i) {
  const prompt = promptOf(args, i);
  try {
    const c = await client.chat.completions.create({ model: args.model || "gpt-4o-mini", messages: messages(prompt) });
    return { prompt, id: c.id, model: c.model, content: c.choices[0].message.content,
      finish_reason: c.choices[0].finish_reason, usage: c.usage };
  } catch (err) {
    return { prompt, error: describeError(err) };
  }
}

async function chatStream(client, args, i) {
  const prompt = promptOf(args, i);
  const out = { prompt, chunks: 0, deltas: [] };
  try {
    const stream = client.chat.completions.stream({ model: args.model || "gpt-4o-mini", messages: messages(prompt),
      stream_options: { include_usage: true } });
    for await (const chunk of stream) {
      out.chunks += 1;
      for (const choice of chunk.choices) if (choice.delta?.content) out.deltas.push(choice.delta.content);
    }
    const final = await stream.finalChatCompletion();
    Object.assign(out, { id: final.id, model: final.model, content: final.choices[0].message.content,
      finish_reason: final.choices[0].finish_reason, usage: final.usage ?? null });
  } catch (err) {
    out.error = describeError(err);
  }
  return out;
}

async function responsesStream(client, args, i) {
  const prompt = promptOf(args, i);
  const out = { prompt, event_types: [], deltas: [] };
  try {
    const stream = client.responses.stream({ model: args.model || "gpt-4o-mini", instructions: SYSTEM_PROMPT,
      input: prompt });
    for await (const event of stream) {
      if (!out.event_types.includes(event.type)) out.event_types.push(event.type);
      if (event.type === "response.output_text.delta") out.deltas.push(event.delta);
    }
    const final = await stream.finalResponse();
    Object.assign(out, { id: final.id, model: final.model, content: final.output_text, status: final.status,
      usage: final.usage ?? null });
  } catch (err) {
    out.error = describeError(err);
  }
  return out;
}

async function models(client) {
  try {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    return { prompt: null, models: ids };
  } catch (err) {
    return { prompt: null, error: describeError(err) };
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const client = new OpenAI({ baseURL: `${args.baseUrl}/v1`, apiKey: process.env.OPENAI_API_KEY,
    maxRetries: Number(args.maxRetries), defaultHeaders: args.headers, timeout: 30_000 });
  const range = [...Array(args.count).keys()];
  const one = { chat, chat_stream: chatStream, responses_stream: responsesStream, models }[args.scenario];
  const results = [];
  if (args.scenario === "concurrent_streams") {
    results.push(...await Promise.all(range.map((i) => chatStream(client, args, i))));
  } else {
    for (const i of range) results.push(await one(client, args, i));
  }
  process.stdout.write(JSON.stringify({ client: "openai_node", scenario: args.scenario, pid: process.pid,
    sdk_version: VERSION, node_version: process.version, results }) + "\n");
}

main().catch((err) => { process.stderr.write(`${err.stack}\n`); process.exit(1); });
