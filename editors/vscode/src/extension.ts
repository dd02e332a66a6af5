// Ghostline for VS Code: the entry point. It makes the log channel, the failure reporter and the
// server, then activates one feature per file (status bar, inline completions, commands), each
// pushing its disposables, and starts the server.
import * as vscode from "vscode";

import * as commands from "./commands";
import { Failures } from "./failures";
import * as inline from "./inline";
import { Server } from "./server";
import * as statusBar from "./statusBar";

let running: Server | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("Ghostline", { log: true });
  const failures = new Failures(log);
  const server = new Server(context, log, failures);
  running = server;
  context.subscriptions.push(log, server);
  statusBar.activate(context, server);
  inline.activate(context, server);
  commands.activate(context, server);
  await server.start();
}

// VS Code waits for this: the server gets shutdown + exit rather than a killed pipe.
export function deactivate(): Promise<void> | undefined {
  return running?.stop();
}
