// The extension's settings (the `ghostline.*` configuration) and how they reach the server: the
// binary to start, its arguments, the initializationOptions / didChangeConfiguration payload the
// server's apply_settings reads (lsp/protocol.cpp), and which changes need a restart.
// Pure: no `vscode` import, so it is unit-tested under plain node and reused by the browser test.

export type Device = string; // "auto" | "cpu" | "cuda" | "cuda:N"

export interface GhostlineSettings {
  enable: boolean;
  binary: string;              // path to `ghostline`; empty = the repository's build or $PATH
  model: string;               // model folder; empty = the server's embedded default
  endpoint: string;            // remote engine URL; empty = in-process engine
  device: Device;
  maxTokens: number;
  temperature: number;
  enabledLanguages: string[];  // VS Code language ids; empty = all
  completeInComments: boolean;
  debounceMs: number;          // pause in typing before asking (client side)
}

export const defaults: GhostlineSettings = {
  enable: true,
  binary: "",
  model: "",
  endpoint: "",
  device: "auto",
  maxTokens: 64,
  temperature: 0,
  enabledLanguages: [],
  completeInComments: false,
  debounceMs: 75,
};

const devicePattern = /^(auto|cpu|cuda(:\d+)?)$/;

// Reads settings through `get(key)` (VS Code's WorkspaceConfiguration.get or a plain object),
// replacing values of the wrong type or out of range by the defaults; `problems` says which.
export function readSettings(get: (key: string) => unknown): { settings: GhostlineSettings; problems: string[] } {
  const problems: string[] = [];
  const str = (key: keyof GhostlineSettings): string => {
    const v = get(key);
    if (v === undefined || v === null) return defaults[key] as string;
    if (typeof v !== "string") {
      problems.push(`ghostline.${key} must be a string`);
      return defaults[key] as string;
    }
    return v.trim();
  };
  const num = (key: keyof GhostlineSettings, min: number, max: number, integer: boolean): number => {
    const v = get(key);
    if (v === undefined || v === null) return defaults[key] as number;
    if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
      problems.push(`ghostline.${key} must be ${integer ? "an integer" : "a number"} from ${min} to ${max}`);
      return defaults[key] as number;
    }
    return v;
  };
  const bool = (key: keyof GhostlineSettings): boolean => {
    const v = get(key);
    if (v === undefined || v === null) return defaults[key] as boolean;
    if (typeof v !== "boolean") {
      problems.push(`ghostline.${key} must be true or false`);
      return defaults[key] as boolean;
    }
    return v;
  };

  let device = str("device") || "auto";
  if (!devicePattern.test(device)) {
    problems.push(`ghostline.device must be auto, cpu, cuda or cuda:N, not '${device}'`);
    device = "auto";
  }
  let languages: string[] = [];
  const rawLanguages = get("enabledLanguages");
  if (Array.isArray(rawLanguages) && rawLanguages.every((l) => typeof l === "string")) {
    languages = [...new Set(rawLanguages.map((l: string) => l.trim()).filter((l) => l.length > 0))];
  } else if (rawLanguages !== undefined && rawLanguages !== null) {
    problems.push("ghostline.enabledLanguages must be a list of language ids");
  }

  const settings: GhostlineSettings = {
    enable: bool("enable"),
    binary: str("binary"),
    model: str("model"),
    endpoint: str("endpoint"),
    device,
    maxTokens: num("maxTokens", 1, 4096, true),
    temperature: num("temperature", 0, 2, false),
    enabledLanguages: languages,
    completeInComments: bool("completeInComments"),
    debounceMs: num("debounceMs", 0, 2000, true),
  };
  if (settings.model && settings.endpoint)
    problems.push("ghostline.model and ghostline.endpoint are both set: the endpoint is used");
  return { settings, problems };
}

// What the server's apply_settings reads, under the "ghostline" key. Empty strings are left out:
// the server would take an empty model as "no model" rather than its embedded default.
export interface ServerSettings {
  model?: string;
  endpoint?: string;
  device: string;
  maxTokens: number;
  temperature: number;
  enabledLanguages: string[];
  completeInComments: boolean;
}

export function serverSettings(s: GhostlineSettings): { ghostline: ServerSettings } {
  const out: ServerSettings = {
    device: s.device,
    maxTokens: s.maxTokens,
    temperature: s.temperature,
    enabledLanguages: [...s.enabledLanguages],
    completeInComments: s.completeInComments,
  };
  if (s.endpoint) out.endpoint = s.endpoint;
  else if (s.model) out.model = s.model;
  return { ghostline: out };
}

// Arguments of `ghostline lsp`. The model, endpoint and device go on the command line as well, so
// the server loads the right model from its first request and a bad value fails at start with the
// server's own message.
export function serverArgs(s: GhostlineSettings): string[] {
  const args = ["lsp"];
  if (s.endpoint) args.push("--endpoint", s.endpoint);
  else if (s.model) args.push("--model", s.model);
  if (s.device !== "auto") args.push("--device", s.device);
  return args;
}

// Where to look for the binary, in order: the setting, the repository's build/ghostline when the
// extension runs from editors/vscode of a checkout, a binary packaged beside the extension, $PATH.
export function binaryCandidates(s: GhostlineSettings, extensionPath: string, pathJoin: (...p: string[]) => string): string[] {
  if (s.binary) return [s.binary];
  return [pathJoin(extensionPath, "..", "..", "build", "ghostline"), pathJoin(extensionPath, "bin", "ghostline")];
}

// Picks the binary: the first candidate that exists, else `ghostline` from $PATH.
export function resolveBinary(candidates: string[], exists: (p: string) => boolean): string {
  for (const c of candidates) if (exists(c)) return c;
  return candidates.length === 1 ? candidates[0] : "ghostline";
}

export type ChangeAction = "none" | "client" | "notify" | "restart";

// What a settings change needs. "restart": a new process (another binary, or a model/endpoint/
// device cleared or changed, which the command line carries); "notify": send the new settings
// with workspace/didChangeConfiguration; "client": only the extension's own behaviour changed.
export function changeAction(before: GhostlineSettings, after: GhostlineSettings): ChangeAction {
  if (before.binary !== after.binary || before.model !== after.model || before.endpoint !== after.endpoint ||
      before.device !== after.device)
    return "restart";
  const a = serverSettings(before).ghostline, b = serverSettings(after).ghostline;
  if (JSON.stringify(a) !== JSON.stringify(b)) return "notify";
  if (before.enable !== after.enable || before.debounceMs !== after.debounceMs) return "client";
  return "none";
}

// Whether the extension asks for completions in a document of this language.
export function languageEnabled(s: GhostlineSettings, languageId: string): boolean {
  return s.enable && (s.enabledLanguages.length === 0 || s.enabledLanguages.includes(languageId));
}
