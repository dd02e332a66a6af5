// The status-bar text and tooltip through a session: start, model load, completions, failures.
import assert from "node:assert/strict";
import { test } from "node:test";

import { Status, StatusEvent, initialStatus, parseLogLine, reduce, render } from "../src/status";

const run = (events: StatusEvent[], from: Status = initialStatus) => events.reduce(reduce, from);

test("the server's model-load log line gives the model's folder name and the device", () => {
  assert.deepEqual(
    parseLogLine("model /repo/models/ghostline-coder-tiny loaded on cpu in 812 ms (DeepSeek FIM, SPM, KV for 4096 tokens)"),
    { model: "ghostline-coder-tiny", device: "cpu", loadMs: 812, error: undefined, loading: undefined },
  );
  assert.deepEqual(parseLogLine("model load failed: config.json: no such file"), { error: "config.json: no such file", loading: undefined });
  assert.deepEqual(parseLogLine("Model failed to load: bad"), { error: "bad", loading: undefined });
  assert.deepEqual(parseLogLine("Loading model /m/tiny"), { loading: { message: "Loading model /m/tiny" } });
  assert.deepEqual(parseLogLine("Model tiny ready"), { loading: undefined });
  assert.equal(parseLogLine("didChange ignored: document is not open"), undefined);
});

test("a session: starting, running, loading, loaded, completions", () => {
  let s = run([{ kind: "starting" }]);
  assert.equal(render(s).text, "$(loading~spin) Ghostline");

  s = run([{ kind: "running", serverVersion: "0.1.0" }], s);
  assert.equal(render(s).text, "$(sparkle) Ghostline");
  assert.match(render(s).tooltip, /Model: not loaded yet/);
  assert.match(render(s).tooltip, /Version: ghostline 0\.1\.0/);

  s = run([{ kind: "progress", phase: "begin", message: "Loading model /m/tiny", percent: 0 }], s);
  assert.equal(render(s).text, "$(loading~spin) Ghostline");
  assert.match(render(s).tooltip, /Loading model \/m\/tiny/);
  s = run([{ kind: "progress", phase: "report", percent: 40 }], s);
  assert.equal(render(s).text, "$(loading~spin) Ghostline 40%");
  assert.match(render(s).tooltip, /Loading model/);

  s = run([
    { kind: "progress", phase: "end", message: "Model tiny ready" },
    { kind: "log", message: "model /m/tiny loaded on cpu in 950 ms (x)" },
    { kind: "completion", latencyMs: 1234.4, items: 1 },
  ], s);
  const r = render(s);
  assert.equal(r.text, "$(sparkle) Ghostline · tiny · cpu · 1234 ms");
  assert.equal(r.warning, false);
  assert.match(r.tooltip, /Model: tiny \(loaded in 950 ms\)/);
  assert.match(r.tooltip, /Device: cpu/);
  assert.match(r.tooltip, /Last completion: 1234 ms$/m);

  s = run([{ kind: "completion", latencyMs: 3.25, items: 0 }], s);
  assert.equal(render(s).text, "$(sparkle) Ghostline · tiny · cpu · 3.3 ms");
  assert.match(render(s).tooltip, /Last completion: 3\.3 ms, no suggestion/);
});

test("a model load reported in log lines (before initialize was answered) shows as loading", () => {
  let s = run([{ kind: "running" }, { kind: "log", message: "Loading model /m/tiny" }]);
  assert.equal(render(s).text, "$(loading~spin) Ghostline");
  assert.match(render(s).tooltip, /^Loading model \/m\/tiny$/m);
  s = run([{ kind: "log", message: "Model tiny ready" }, { kind: "log", message: "model /m/tiny loaded on cpu in 300 ms (x)" }], s);
  assert.equal(render(s).text, "$(sparkle) Ghostline · tiny · cpu");
});

test("a failed model load shows a warning that says why", () => {
  const s = run([
    { kind: "running" },
    { kind: "progress", phase: "begin", message: "Loading model /nope" },
    { kind: "progress", phase: "end", message: "Model failed to load: /nope/config.json: not found" },
    { kind: "log", message: "model load failed: /nope/config.json: not found" },
  ]);
  const r = render(s);
  assert.equal(r.warning, true);
  assert.equal(r.text, "$(warning) Ghostline");
  assert.match(r.tooltip, /Error: \/nope\/config\.json: not found/);
  // A later successful load clears it.
  const ok = render(run([{ kind: "log", message: "model /m/b loaded on cuda:0 in 3 ms" }], s));
  assert.equal(ok.warning, false);
  assert.equal(ok.text, "$(sparkle) Ghostline · b · cuda:0");
});

test("the server failing to start, stopping, and completions turned off", () => {
  const failed = render(run([{ kind: "failed", error: "spawn /x/ghostline ENOENT" }]));
  assert.equal(failed.text, "$(error) Ghostline");
  assert.equal(failed.warning, true);
  assert.match(failed.tooltip, /Server failed: spawn \/x\/ghostline ENOENT/);

  assert.equal(render(run([{ kind: "running" }, { kind: "stopped" }])).text, "$(circle-slash) Ghostline");

  const off = render(run([{ kind: "running" }, { kind: "enabled", enabled: false }]));
  assert.equal(off.text, "$(circle-slash) Ghostline");
  assert.match(off.tooltip, /Completions are off/);
  // Starting again keeps the user's choice.
  assert.equal(run([{ kind: "enabled", enabled: false }, { kind: "starting" }]).enabled, false);
});

test("ghostline/status: the loaded model's name and device, or why it failed to load", () => {
  const s = run([
    { kind: "running" },
    { kind: "serverStatus", params: { model: "/models/qwen3-coder", modelName: "qwen3-coder", device: "cuda", loaded: true, loadError: "",
      answers: { engine: 2 }, last: { source: "engine", totalMs: 12.5, ttftMs: 4, promptTokens: 300, cachedTokens: 290, generatedTokens: 9 } } },
    { kind: "completion", latencyMs: 15, items: 1 },
  ]);
  assert.equal(render(s).text, "$(sparkle) Ghostline · qwen3-coder · cuda · 15 ms");
  assert.match(render(s).tooltip, /^Server: 13 ms \(engine; 300 prompt tokens, 290 cached, 9 generated\)$/m);

  // Not loaded yet: nothing to show; a load error is shown.
  const pending = run([{ kind: "running" }, { kind: "serverStatus", params: { model: "/m", modelName: "", device: "", loaded: false, loadError: "" } }]);
  assert.equal(pending.model, undefined);
  assert.equal(render(pending).warning, false);
  const broken = render(run([{ kind: "running" }, { kind: "serverStatus", params: { model: "/m", loaded: false, loadError: "/m/config.json: not found" } }]));
  assert.equal(broken.warning, true);
  assert.match(broken.tooltip, /Error: \/m\/config\.json: not found/);
  // Garbage is ignored.
  assert.deepEqual(run([{ kind: "serverStatus", params: 7 }], s), s);
});

test("ghostline/completionStats: the server's numbers for the last answer, in the tooltip", () => {
  let s = run([{ kind: "running" }, { kind: "log", message: "model /m/tiny loaded on cpu in 3 ms" }, { kind: "completion", latencyMs: 20, items: 1 }]);
  s = run([{ kind: "completionStats", params: { uri: "file:///a.py", requestId: 4, method: "textDocument/inlineCompletion", items: 1,
    source: "typing-through", promptTokens: 0, cachedTokens: 0, generatedTokens: 0, draftProposed: 0, draftAccepted: 0, ttftMs: 0, totalMs: 0.4 } }], s);
  const r = render(s);
  assert.equal(r.text, "$(sparkle) Ghostline · tiny · cpu · 20 ms");
  assert.match(r.tooltip, /^Last completion: 20 ms$/m);
  assert.match(r.tooltip, /^Server: 0\.4 ms \(typing-through\)$/m);
  // Without a source it is not stats.
  assert.deepEqual(run([{ kind: "completionStats", params: { totalMs: 3 } }], s), s);
});
