// The status-bar item: server state, model, device, model-load progress and the last completion's
// latency (status.ts computes the text); a click opens the Ghostline menu.
import * as vscode from "vscode";

import { Server } from "./server";
import { Status, initialStatus, reduce, render } from "./status";

export function activate(context: vscode.ExtensionContext, server: Server): void {
  const item = vscode.window.createStatusBarItem("status", vscode.StatusBarAlignment.Right, 100);
  item.name = "Ghostline";
  item.command = "ghostline.menu";
  let status: Status = { ...initialStatus, enabled: server.settings.enable };
  const update = () => {
    const r = render(status);
    item.text = r.text;
    item.tooltip = r.tooltip;
    item.backgroundColor = r.warning ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  };
  context.subscriptions.push(
    item,
    server.onStatus((e) => {
      status = reduce(status, e);
      update();
    }),
  );
  update();
  item.show();
}
