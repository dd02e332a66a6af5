// The one place that decides how a failure reaches the user: always a line in the Ghostline log,
// and a notification (with "Show Log") the first time a given kind of failure happens in a
// session, so a broken model or binary does not pop up on every keystroke.
import * as vscode from "vscode";

export class Failures {
  private readonly notified = new Set<string>();

  constructor(private readonly log: vscode.LogOutputChannel) {}

  // `kind` groups repeats ("start", "model", "config"); `detail` is the cause as the user should read it.
  report(kind: string, message: string, error?: unknown): void {
    const detail = error === undefined ? "" : `: ${describe(error)}`;
    this.log.error(`${message}${detail}`);
    if (this.notified.has(kind)) return;
    this.notified.add(kind);
    void vscode.window.showErrorMessage(`Ghostline: ${message}${detail}`, "Show Log", "Open Settings").then((choice) => {
      if (choice === "Show Log") this.log.show(true);
      else if (choice === "Open Settings") void vscode.commands.executeCommand("workbench.action.openSettings", "ghostline");
    });
  }

  warn(message: string): void {
    this.log.warn(message);
  }

  // After a restart or a settings change the same failure is news again.
  reset(): void {
    this.notified.clear();
  }
}

export function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}
