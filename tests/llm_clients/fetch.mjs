// Traffic source: Node's global fetch (undici), no SDK. Node 20's fetch speaks
// HTTP/1.1 only (it offers no h2 in ALPN). The CA comes from NODE_EXTRA_CA_CERTS,
// which node reads at start-up, so it must be in the environment (--ca is
// accepted for a uniform command line and checked to match).
//
//   node tests/llm_clients/fetch.mjs --base-url URL --ca CA --scenario NAME
//        [--count N] [--header 'name: value'] [--prompt TEXT] [--model M] [--path P]
//
// Scenarios:
//   get                 --count GETs of --path
//   chat, chat_stream   --count OpenAI chat completions, one after another
//   messages_stream     --count Anthropic streamed Messages calls, one after another
//   concurrent_streams  --count chat_stream requests at once (Promise.all)
// Prints {"client": "fetch", "scenario", "pid", "results": [...]}; a result has
// "status", "headers", "body_b64" (after content decoding), "reads" (bytes per
// read), "content" (the assembled reply text, for LLM calls) or "error".
// Keys: OPENAI_API_KEY / ANTHROPIC_API_KEY; cookie: LLMTAP_TEST_COOKIE.

import process from "node:process";

const SYSTEM_PROMPT = "You are a terse test assistant.";
const SCENARIOS = ["get", "chat", "chat_stream", "messages_stream", "concurrent_streams"];

function parseArgs(argv) {
  const args = { count: 1, header: [], prompt: "Say hello to llmtap", model: null, path: "/healthz" };
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i].replace(/^--/, "").replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const value = argv[++i];
    if (key === "header") args.header.push(value);
    else if (key === "count") args.count = Number(value);
    else args[key] = value;
  }
  if (!args.baseUrl || !args.scenario || !SCENARIOS.includes(args.scenario)) {
    process.stderr.write(`usage: fetch.mjs --base-url URL --ca CA --scenario ${SCENARIOS.join("|")}\n`);
    process.exit(2);
  }
  if (args.ca && process.env.NODE_EXTRA_CA_CERTS !== args.ca) {
    process.stderr.write("fetch.mjs: set NODE_EXTRA_CA_CERTS to the --ca file\n");
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
  const cause = err.cause ? ` (${err.cause.code || err.cause.message})` : "";
  return { type: err.name, message: `${err.message}${cause}`.slice(0, 500) };
}

// SSE data fields of a complete or partial event stream.
function sseData(text) {
  return text.split("\n\n").flatMap((block) =>
    block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)));
}

function assemble(kind, text) {
  const parts = [];
  for (const data of sseData(text)) {
    if (data === "[DONE]") continue;
    let event;
    try { event = JSON.parse(data); } catch { continue; }   // a cut mid-event
    if (kind === "openai") parts.push(...(event.choices || []).map((c) => c.delta?.content ?? ""));
    if (kind === "anthropic" && event.type === "content_block_delta") parts.push(event.delta.text ?? "");
  }
  return parts.join("");
}

async function send(args, method, path, body, extraHeaders, prompt, kind) {
  const headers = { cookie: process.env.LLMTAP_TEST_COOKIE || "session=llmtap-test", ...extraHeaders, ...args.headers };
  if (body !== null) headers["content-type"] = "application/json";
  const out = { prompt };
  let response;
  try {
    response = await fetch(args.baseUrl + path, { method, headers, body });
  } catch (err) {
    return { ...out, error: describeError(err) };
  }
  out.status = response.status;
  out.headers = Object.fromEntries(response.headers.entries());
  const reads = [];
  try {
    for await (const chunk of response.body) reads.push(Buffer.from(chunk));
  } catch (err) {
    out.error = describeError(err);
  }
  const buf = Buffer.concat(reads);
  out.reads = reads.map((r) => r.length);
  out.body_b64 = buf.toString("base64");
  const text = buf.toString("utf8");
  if (kind && (out.headers["content-type"] || "").startsWith("text/event-stream")) out.content = assemble(kind, text);
  else if (kind && response.ok && !out.error) {
    const json = JSON.parse(text);
    out.content = kind === "openai" ? json.choices[0].message.content : json.content.map((b) => b.text).join("");
  }
  return out;
}

function chat(args, i, stream) {
  const prompt = promptOf(args, i);
  const payload = { model: args.model || "gpt-4o-mini", stream,
    messages: [{ role: "system", content: SYSTEM_PROMPT }, { role: "user", content: prompt }] };
  if (stream) payload.stream_options = { include_usage: true };
  return send(args, "POST", "/v1/chat/completions", JSON.stringify(payload),
    { authorization: `Bearer ${process.env.OPENAI_API_KEY}` }, prompt, "openai");
}

function messagesStream(args, i) {
  const prompt = promptOf(args, i);
  const payload = { model: args.model || "claude-sonnet-4-5-20250929", max_tokens: 256, stream: true,
    system: SYSTEM_PROMPT, messages: [{ role: "user", content: prompt }] };
  return send(args, "POST", "/v1/messages", JSON.stringify(payload),
    { "x-api-key": process.env.ANTHROPIC_API_KEY, "anthropic-version": "2023-06-01" }, prompt, "anthropic");
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const results = [];
  const range = [...Array(args.count).keys()];
  if (args.scenario === "concurrent_streams") {
    results.push(...await Promise.all(range.map((i) => chat(args, i, true))));
  } else {
    for (const i of range) {
      if (args.scenario === "get") results.push(await send(args, "GET", args.path, null, {}, null, null));
      else if (args.scenario === "chat") results.push(await chat(args, i, false));
      else if (args.scenario === "chat_stream") results.push(await chat(args, i, true));
      else results.push(await messagesStream(args, i));
    }
  }
  process.stdout.write(JSON.stringify({ client: "fetch", scenario: args.scenario, pid: process.pid,
    node_version: process.version, results }) + "\n");
}

main().catch((err) => { process.stderr.write(`${err.stack}\n`); process.exit(1); });
