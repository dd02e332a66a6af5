// The language client: starts `ghostline lsp` over stdio with vscode-languageclient, keeps it in
// step with the `ghostline.*` settings (restart or workspace/didChangeConfiguration, see
// settings.ts), and turns what the server says (window/logMessage, the model-load $/progress,
// the `ghostline/status` request and the `ghostline/completionStats` notification) into status
// events. Inline completions, code actions and quick fixes are vscode-languageclient's own
// features; the inline feature adds middleware.
import * as fs from "fs";
import * as path from "path";
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ErrorCodes,
  LanguageClient,
  LanguageClientOptions,
  LogMessageNotification,
  MessageType,
  ResponseError,
  ServerOptions,
  State,
  TransportKind,
  WorkDoneProgress,
  WorkDoneProgressCreateRequest,
} from "vscode-languageclient/node";
import type { Middleware } from "vscode-languageclient/node";

import { Failures, describe } from "./failures";
import {
  GhostlineSettings,
  binaryCandidates,
  changeAction,
  readSettings,
  resolveBinary,
  serverArgs,
  serverSettings,
} from "./settings";
import { StatusEvent } from "./status";

const maxCrashRestarts = 3;          // within crashWindowMs, then the server stays down
const crashWindowMs = 3 * 60 * 1000;

export class Server implements vscode.Disposable {
  settings: GhostlineSettings;
  // Set by the inline feature before start(): wraps every textDocument/inlineCompletion.
  inlineMiddleware?: Middleware["provideInlineCompletionItems"];

  private client?: LanguageClient;
  private readonly statusEmitter = new vscode.EventEmitter<StatusEvent>();
  readonly onStatus = this.statusEmitter.event;
  private readonly disposables: vscode.Disposable[] = [];
  private crashes: number[] = [];

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
    private readonly failures: Failures,
  ) {
    this.settings = this.read();
    this.disposables.push(
      this.statusEmitter,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration("ghostline")) void this.onSettingsChanged();
      }),
    );
  }

  emit(event: StatusEvent): void {
    this.statusEmitter.fire(event);
  }

  get running(): boolean {
    return this.client?.state === State.Running;
  }

  async start(): Promise<void> {
    if (this.client) return;
    this.crashes = [];
    const binary = resolveBinary(binaryCandidates(this.settings, this.context.extensionPath, path.join), (p) => fs.existsSync(p));
    const args = serverArgs(this.settings);
    this.log.info(`starting ${binary} ${args.join(" ")}`);
    this.emit({ kind: "starting" });
    const client = this.createClient(binary, args);
    this.client = client;
    try {
      await client.start();
    } catch (error) {
      if (this.client === client) this.client = undefined;
      await client.dispose().catch(() => undefined);
      const hint = this.settings.binary ? "check ghostline.binary" : "build it (./run.sh) or set ghostline.binary";
      this.failures.report("start", `cannot start the server '${binary}' (${hint})`, error);
      this.emit({ kind: "failed", error: describe(error) });
    }
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      if (client.isRunning()) await client.stop(2000);
    } catch (error) {
      this.log.warn(`stopping the server: ${describe(error)}`);
    }
    await client.dispose().catch(() => undefined);
    this.emit({ kind: "stopped" });
  }

  async restart(): Promise<void> {
    this.failures.reset();
    await this.stop();
    await this.start();
  }

  dispose(): void {
    void this.stop();
    for (const d of this.disposables) d.dispose();
  }

  private read(): GhostlineSettings {
    const config = vscode.workspace.getConfiguration("ghostline");
    const { settings, problems } = readSettings((key) => config.get(key));
    for (const p of problems) this.failures.report("config", p);
    return settings;
  }

  private async onSettingsChanged(): Promise<void> {
    const before = this.settings;
    this.settings = this.read();
    const action = changeAction(before, this.settings);
    this.log.info(`settings changed: ${action}`);
    if (before.enable !== this.settings.enable) this.emit({ kind: "enabled", enabled: this.settings.enable });
    if (action === "restart") return this.restart();
    if (action === "notify" && this.client && this.running) {
      try {
        await this.client.sendNotification(DidChangeConfigurationNotification.type, { settings: serverSettings(this.settings) });
      } catch (error) {
        this.failures.report("config", "could not send the new settings to the server", error);
      }
    }
  }

  private createClient(command: string, args: string[]): LanguageClient {
    const serverOptions: ServerOptions = { command, args, transport: TransportKind.stdio };
    let client: LanguageClient | undefined = undefined;
    const clientOptions: LanguageClientOptions = {
      // Every file and unsaved buffer: the server picks the languages it completes
      // (ghostline.enabledLanguages, sent in the settings), so changing them needs no restart.
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: this.log,
      initializationOptions: () => serverSettings(this.settings),
      middleware: {
        provideInlineCompletionItems: (document, position, context, token, next) =>
          this.inlineMiddleware ? this.inlineMiddleware(document, position, context, token, next) : next(document, position, context, token),
      },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue, handled: true }),
        closed: () => this.onClosed(client),
      },
      initializationFailedHandler: (error) => {
        this.failures.report("start", "the server refused to initialize", error);
        return false;
      },
    };
    client = new LanguageClient("ghostline", "Ghostline", serverOptions, clientOptions);

    // The server's log lines go to our channel at their level, and carry the model and device.
    client.onNotification(LogMessageNotification.type, (m) => {
      if (m.type === MessageType.Error) this.log.error(m.message);
      else if (m.type === MessageType.Warning) this.log.warn(m.message);
      else this.log.info(m.message);
      this.emit({ kind: "log", message: m.message });
      if (/^model .* (loaded on|load failed)/.test(m.message)) void this.queryStatus(client);
    });
    client.onNotification("ghostline/completionStats", (params: unknown) => this.emit({ kind: "completionStats", params }));
    client.onDidChangeState((e) => {
      if (e.newState === State.Running) {
        this.watchProgress(client);
        this.emit({ kind: "running", serverVersion: client.initializeResult?.serverInfo?.version });
        void this.queryStatus(client);
      } else if (e.newState === State.Starting) {
        this.emit({ kind: "starting" });
      }
    });
    return client;
  }

  // The model load is reported with window/workDoneProgress; it goes to the status bar rather than
  // a notification. Registered on every start, after vscode-languageclient's own handler.
  private watchProgress(client: LanguageClient): void {
    client.onRequest(WorkDoneProgressCreateRequest.type, ({ token }) => {
      const sub = client.onProgress(WorkDoneProgress.type, token, (value) => {
        if (value.kind === "begin") this.emit({ kind: "progress", phase: "begin", message: value.message ?? value.title, percent: value.percentage });
        else if (value.kind === "report") this.emit({ kind: "progress", phase: "report", message: value.message, percent: value.percentage });
        else {
          this.emit({ kind: "progress", phase: "end", message: value.message });
          sub.dispose();
          void this.queryStatus(client);
        }
      });
    });
  }

  // Asks the server for its model facts (ghostline/status); a server without the method is
  // left to its log lines.
  private async queryStatus(client: LanguageClient): Promise<void> {
    if (client.state !== State.Running) return;
    try {
      const params = await client.sendRequest<unknown>("ghostline/status");
      this.emit({ kind: "serverStatus", params });
    } catch (error) {
      if (error instanceof ResponseError && error.code === ErrorCodes.MethodNotFound) return;
      this.log.warn(`ghostline/status: ${describe(error)}`);
    }
  }

  private onClosed(client: LanguageClient | undefined): { action: CloseAction; handled: boolean } {
    // A client we stopped or gave up on (its start failed) is not restarted.
    if (!client || client !== this.client) return { action: CloseAction.DoNotRestart, handled: true };
    const now = Date.now();
    this.crashes = this.crashes.filter((t) => now - t < crashWindowMs);
    this.crashes.push(now);
    if (this.crashes.length <= maxCrashRestarts) {
      this.log.warn(`the server exited; restarting (${this.crashes.length} of ${maxCrashRestarts})`);
      return { action: CloseAction.Restart, handled: true };
    }
    this.failures.report("crash", `the server exited ${this.crashes.length} times in 3 minutes and stays stopped (Ghostline: Restart Server to try again)`);
    this.emit({ kind: "failed", error: "the server keeps exiting" });
    return { action: CloseAction.DoNotRestart, handled: true };
  }
}
