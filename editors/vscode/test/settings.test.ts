// Settings: reading and validating ghostline.*, the payload the server reads, the command line,
// the binary, and which changes restart the server.
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";

import {
  GhostlineSettings,
  binaryCandidates,
  changeAction,
  defaults,
  languageEnabled,
  readSettings,
  resolveBinary,
  serverArgs,
  serverSettings,
} from "../src/settings";

const from = (o: Record<string, unknown>) => readSettings((k) => o[k]);
const with_ = (o: Partial<GhostlineSettings>): GhostlineSettings => ({ ...defaults, ...o });

test("unset settings are the defaults, with no problems", () => {
  const { settings, problems } = from({});
  assert.deepEqual(settings, defaults);
  assert.deepEqual(problems, []);
});

test("values are read, trimmed and de-duplicated", () => {
  const { settings, problems } = from({
    model: " /models/dsv2 ", device: "cuda:1", maxTokens: 128, temperature: 0.2,
    enabledLanguages: ["python", " cpp", "python", ""], completeInComments: true, enable: false,
  });
  assert.deepEqual(problems, []);
  assert.equal(settings.model, "/models/dsv2");
  assert.equal(settings.device, "cuda:1");
  assert.equal(settings.maxTokens, 128);
  assert.equal(settings.temperature, 0.2);
  assert.deepEqual(settings.enabledLanguages, ["python", "cpp"]);
  assert.equal(settings.completeInComments, true);
  assert.equal(settings.enable, false);
});

test("wrong values fall back to the defaults and are reported", () => {
  const { settings, problems } = from({ device: "gpu", maxTokens: 0, temperature: "hot", enabledLanguages: "python", enable: "yes" });
  assert.equal(settings.device, "auto");
  assert.equal(settings.maxTokens, 64);
  assert.equal(settings.temperature, 0);
  assert.deepEqual(settings.enabledLanguages, []);
  assert.equal(settings.enable, true);
  assert.equal(problems.length, 5, problems.join("\n"));
  assert.match(problems[0], /ghostline\.device must be auto, cpu, cuda or cuda:N, not 'gpu'/);
  assert.ok(problems.some((p) => /maxTokens must be an integer from 1 to 4096/.test(p)));
});

test("maxTokens must be an integer", () => {
  assert.equal(from({ maxTokens: 12.5 }).settings.maxTokens, 64);
});

test("server settings: the keys apply_settings reads, empty paths left out", () => {
  assert.deepEqual(serverSettings(defaults), {
    ghostline: { device: "auto", maxTokens: 64, temperature: 0, enabledLanguages: [], completeInComments: false },
  });
  const s = serverSettings(with_({ model: "/m", maxTokens: 16, enabledLanguages: ["go"] }));
  assert.deepEqual(s, {
    ghostline: { device: "auto", maxTokens: 16, temperature: 0, enabledLanguages: ["go"], completeInComments: false, model: "/m" },
  });
  // The client-only settings never reach the server.
  assert.ok(!("enable" in s.ghostline) && !("binary" in s.ghostline) && !("debounceMs" in s.ghostline));
});

test("an endpoint wins over a model, and is reported", () => {
  const { settings, problems } = from({ model: "/m", endpoint: "http://127.0.0.1:8080" });
  assert.equal(problems.length, 1);
  assert.deepEqual(serverSettings(settings).ghostline.endpoint, "http://127.0.0.1:8080");
  assert.equal(serverSettings(settings).ghostline.model, undefined);
  assert.deepEqual(serverArgs(settings), ["lsp", "--endpoint", "http://127.0.0.1:8080"]);
});

test("command line: lsp, then the model and a device other than auto", () => {
  assert.deepEqual(serverArgs(defaults), ["lsp"]);
  assert.deepEqual(serverArgs(with_({ model: "/m", device: "cpu" })), ["lsp", "--model", "/m", "--device", "cpu"]);
});

test("binary: the setting alone, else the repository build, the packaged one, then $PATH", () => {
  const ext = "/repo/editors/vscode";
  assert.deepEqual(binaryCandidates(with_({ binary: "/opt/gl" }), ext, path.posix.join), ["/opt/gl"]);
  const candidates = binaryCandidates(defaults, ext, path.posix.join);
  assert.deepEqual(candidates, ["/repo/build/ghostline", "/repo/editors/vscode/bin/ghostline"]);
  assert.equal(resolveBinary(candidates, (p) => p === "/repo/build/ghostline"), "/repo/build/ghostline");
  assert.equal(resolveBinary(candidates, (p) => p.endsWith("bin/ghostline")), "/repo/editors/vscode/bin/ghostline");
  assert.equal(resolveBinary(candidates, () => false), "ghostline");
  // A configured binary that does not exist is still the one tried: its error names it.
  assert.equal(resolveBinary(["/opt/gl"], () => false), "/opt/gl");
});

test("changes: restart for the process, notify for server settings, client for our own", () => {
  assert.equal(changeAction(defaults, with_({})), "none");
  assert.equal(changeAction(defaults, with_({ binary: "/x" })), "restart");
  assert.equal(changeAction(with_({ model: "/m" }), defaults), "restart");   // back to the embedded model
  assert.equal(changeAction(defaults, with_({ device: "cpu" })), "restart");
  assert.equal(changeAction(defaults, with_({ endpoint: "http://h" })), "restart");
  assert.equal(changeAction(defaults, with_({ maxTokens: 8 })), "notify");
  assert.equal(changeAction(defaults, with_({ enabledLanguages: ["python"] })), "notify");
  assert.equal(changeAction(defaults, with_({ completeInComments: true })), "notify");
  assert.equal(changeAction(defaults, with_({ enable: false })), "client");
  assert.equal(changeAction(defaults, with_({ debounceMs: 50 })), "client");
});

test("languages: all when the list is empty, none when disabled", () => {
  assert.equal(languageEnabled(defaults, "python"), true);
  assert.equal(languageEnabled(with_({ enabledLanguages: ["cpp"] }), "python"), false);
  assert.equal(languageEnabled(with_({ enabledLanguages: ["cpp"] }), "cpp"), true);
  assert.equal(languageEnabled(with_({ enable: false }), "python"), false);
});
