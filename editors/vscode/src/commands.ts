// Commands: toggle completions, restart the server, show the log, and the status-bar menu.
import * as vscode from "vscode";

import { Server } from "./server";

export function activate(context: vscode.ExtensionContext, server: Server): void {
  const toggle = async () => {
    const config = vscode.workspace.getConfiguration("ghostline");
    const inspect = config.inspect<boolean>("enable");
    // Flip it where it is set (workspace over global), so the change is the one that applies.
    const target = inspect?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    await config.update("enable", !server.settings.enable, target);
  };
  const menu = async () => {
    const picks: (vscode.QuickPickItem & { command: string })[] = [
      { label: server.settings.enable ? "$(circle-slash) Turn completions off" : "$(sparkle) Turn completions on", command: "ghostline.toggle" },
      { label: "$(debug-restart) Restart the server", command: "ghostline.restart" },
      { label: "$(output) Show the log", command: "ghostline.showLog" },
      { label: "$(gear) Settings", command: "ghostline.openSettings" },
    ];
    const choice = await vscode.window.showQuickPick(picks, { title: "Ghostline" });
    if (choice) await vscode.commands.executeCommand(choice.command);
  };
  context.subscriptions.push(
    vscode.commands.registerCommand("ghostline.toggle", toggle),
    vscode.commands.registerCommand("ghostline.restart", () => server.restart()),
    vscode.commands.registerCommand("ghostline.showLog", () => server.log.show(true)),
    vscode.commands.registerCommand("ghostline.openSettings", () =>
      vscode.commands.executeCommand("workbench.action.openSettings", "@ext:ghostline.ghostline"),
    ),
    vscode.commands.registerCommand("ghostline.menu", menu),
  );
}
