// What the status-bar item says: server state, model, device, model-load progress and the latency
// of the last completion. Fed by events from the client: server start/stop, $/progress of the
// model load, the server's log lines, timed inlineCompletion requests, the answer to the server's
// `ghostline/status` request and its `ghostline/completionStats` notification (lsp/server.h; an
// older server without them still gets model and device from its log). Pure: no `vscode` import.

export type ServerState = "starting" | "running" | "stopped" | "failed";

export interface Status {
  state: ServerState;
  enabled: boolean;
  serverVersion?: string;
  model?: string;          // short name (folder name) of the loaded model
  device?: string;
  loading?: { message: string; percent?: number };
  loadMs?: number;
  lastLatencyMs?: number;  // request → answer, measured by the client
  lastEmpty?: boolean;     // the last answer had no suggestion
  last?: ServerStats;      // the server's numbers for its last answer
  error?: string;
}

// The numbers of one answer, as ghostline/completionStats and ghostline/status (`last`) carry them.
export interface ServerStats {
  source: string;          // engine, engine-first-line, cache, typing-through, none
  totalMs?: number;
  ttftMs?: number;
  promptTokens?: number;
  cachedTokens?: number;
  generatedTokens?: number;
}

export type StatusEvent =
  | { kind: "starting" }
  | { kind: "running"; serverVersion?: string }
  | { kind: "stopped" }
  | { kind: "failed"; error: string }
  | { kind: "enabled"; enabled: boolean }
  | { kind: "progress"; phase: "begin" | "report" | "end"; message?: string; percent?: number }
  | { kind: "log"; message: string }
  | { kind: "completion"; latencyMs: number; items: number }
  | { kind: "serverStatus"; params: unknown }      // the answer to ghostline/status
  | { kind: "completionStats"; params: unknown };  // the ghostline/completionStats notification

export const initialStatus: Status = { state: "starting", enabled: true };

function baseName(path: string): string {
  const parts = path.split(/[\\/]/).filter((p) => p.length > 0);
  return parts.length ? parts[parts.length - 1] : path;
}

// The server's log lines that carry status (completion/service_impl.cpp). The model-load progress
// also arrives as log lines when it starts before the client's initialize is answered (the server
// loads its model at start):
//   "Loading model <dir>", "Model <name> ready", "Model failed to load: <why>",
//   "model <dir> loaded on <device> in <N> ms (...)", "model load failed: <why>"
export function parseLogLine(line: string): Partial<Status> | undefined {
  const loaded = /^model (.+) loaded on (\S+) in (\d+) ms/.exec(line);
  if (loaded) return { model: baseName(loaded[1]), device: loaded[2], loadMs: Number(loaded[3]), error: undefined, loading: undefined };
  const failed = /^(?:model load failed|Model failed to load): (.*)$/.exec(line);
  if (failed) return { error: failed[1], loading: undefined };
  const loading = /^Loading model (.+)$/.exec(line);
  if (loading) return { loading: { message: line } };
  if (/^Model \S+ ready$/.test(line)) return { loading: undefined };
  return undefined;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

function statsOf(p: unknown): ServerStats | undefined {
  if (!isObject(p) || typeof p.source !== "string" || !p.source) return undefined;
  return {
    source: p.source, totalMs: num(p.totalMs), ttftMs: num(p.ttftMs),
    promptTokens: num(p.promptTokens), cachedTokens: num(p.cachedTokens), generatedTokens: num(p.generatedTokens),
  };
}

// The answer to ghostline/status: {model, modelName, device, loaded, loadError, last, ...}.
function fromServerStatus(params: unknown): Partial<Status> {
  const out: Partial<Status> = {};
  if (!isObject(params)) return out;
  const p = params;
  if (p.loaded === true) {
    const name = typeof p.modelName === "string" && p.modelName ? p.modelName : typeof p.model === "string" ? baseName(p.model) : "";
    if (name) out.model = name;
    if (typeof p.device === "string" && p.device) out.device = p.device;
    out.error = undefined;
  } else if (typeof p.loadError === "string" && p.loadError) {
    out.error = p.loadError;
  }
  const last = statsOf(p.last);
  if (last && last.source !== "none") out.last = last;
  return out;
}

export function reduce(s: Status, e: StatusEvent): Status {
  switch (e.kind) {
    case "starting":
      return { state: "starting", enabled: s.enabled };
    case "running":
      return { ...s, state: "running", serverVersion: e.serverVersion, error: undefined };
    case "stopped":
      return { ...s, state: "stopped", loading: undefined };
    case "failed":
      return { ...s, state: "failed", loading: undefined, error: e.error };
    case "enabled":
      return { ...s, enabled: e.enabled };
    case "progress":
      if (e.phase === "end") {
        const failed = e.message && /fail/i.test(e.message);
        return { ...s, loading: undefined, error: failed ? e.message : s.error };
      }
      return { ...s, loading: { message: e.message ?? s.loading?.message ?? "Loading", percent: e.percent ?? s.loading?.percent } };
    case "log": {
      const parsed = parseLogLine(e.message);
      return parsed ? { ...s, ...parsed } : s;
    }
    case "completion":
      return { ...s, lastLatencyMs: e.latencyMs, lastEmpty: e.items === 0 };
    case "serverStatus":
      return { ...s, ...fromServerStatus(e.params) };
    case "completionStats": {
      const last = statsOf(e.params);
      return last ? { ...s, last } : s;
    }
  }
}

export interface Rendered {
  text: string;      // status-bar text, with VS Code codicons ($(name))
  tooltip: string;   // plain lines
  warning: boolean;  // shown with the warning colour
}

function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

// "12 ms (engine; 45 prompt tokens, 40 cached, 8 generated)"
export function describeStats(t: ServerStats): string {
  const details: string[] = [];
  if (t.promptTokens) details.push(`${t.promptTokens} prompt tokens${t.cachedTokens !== undefined ? `, ${t.cachedTokens} cached` : ""}`);
  if (t.generatedTokens) details.push(`${t.generatedTokens} generated`);
  const time = t.totalMs !== undefined ? `${formatMs(t.totalMs)} ` : "";
  return `${time}(${t.source}${details.length ? `; ${details.join(", ")}` : ""})`;
}

export function render(s: Status): Rendered {
  const lines: string[] = [];
  let text: string;
  let warning = false;
  if (s.state === "failed") {
    text = "$(error) Ghostline";
    warning = true;
    lines.push(`Server failed: ${s.error ?? "unknown error"}`);
  } else if (s.state === "stopped") {
    text = "$(circle-slash) Ghostline";
    lines.push("Server stopped");
  } else if (s.state === "starting") {
    text = "$(loading~spin) Ghostline";
    lines.push("Starting the server");
  } else if (s.loading) {
    const pct = s.loading.percent !== undefined && s.loading.percent > 0 && s.loading.percent < 100 ? ` ${s.loading.percent}%` : "";
    text = `$(loading~spin) Ghostline${pct}`;
    lines.push(s.loading.message);
  } else if (!s.enabled) {
    text = "$(circle-slash) Ghostline";
    lines.push("Completions are off (Ghostline: Toggle Completions)");
  } else {
    const parts = ["$(sparkle) Ghostline"];
    if (s.model) parts.push(s.model);
    if (s.device) parts.push(s.device);
    if (s.lastLatencyMs !== undefined) parts.push(formatMs(s.lastLatencyMs));
    text = parts.join(" · ");
    if (s.error) {
      warning = true;
      text = text.replace("$(sparkle)", "$(warning)");
    }
  }
  if (s.state === "running" || s.state === "starting") {
    if (s.error && s.state === "running") lines.push(`Error: ${s.error}`);
    if (s.model) lines.push(`Model: ${s.model}${s.loadMs !== undefined ? ` (loaded in ${formatMs(s.loadMs)})` : ""}`);
    else if (s.state === "running") lines.push("Model: not loaded yet");
    if (s.device) lines.push(`Device: ${s.device}`);
    if (s.lastLatencyMs !== undefined)
      lines.push(`Last completion: ${formatMs(s.lastLatencyMs)}${s.lastEmpty ? ", no suggestion" : ""}`);
    if (s.last) lines.push(`Server: ${describeStats(s.last)}`);
    if (s.serverVersion) lines.push(`Version: ghostline ${s.serverVersion}`);
  }
  return { text, tooltip: lines.filter((l) => l.length > 0).join("\n"), warning };
}
