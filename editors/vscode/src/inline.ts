// Inline completions (ghost text): vscode-languageclient registers the provider for the server's
// inlineCompletionProvider; this feature wraps each request (enabled languages, optional
// debounce, timing for the status bar), remembers what is shown, and adds "accept next word" and
// "accept next line" (accept all is the editor's own Tab).
import * as vscode from "vscode";
import type { Middleware } from "vscode-languageclient/node";

import { ShownSuggestion, Unit, partialAccept } from "./accept";
import { Server } from "./server";
import { languageEnabled } from "./settings";

type Provide = NonNullable<Middleware["provideInlineCompletionItems"]>;

function sleep(ms: number, token: vscode.CancellationToken): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sub.dispose();
      resolve();
    }, ms);
    const sub = token.onCancellationRequested(() => {
      clearTimeout(timer);
      sub.dispose();
      resolve();
    });
  });
}

function textOf(item: vscode.InlineCompletionItem): string {
  return typeof item.insertText === "string" ? item.insertText : item.insertText.value;
}

export function activate(context: vscode.ExtensionContext, server: Server): void {
  // The latest suggestion per document (what partial accepts work from).
  const shown = new Map<string, ShownSuggestion>();

  const provide: Provide = async (document, position, ctx, token, next) => {
    const uri = document.uri.toString();
    if (!languageEnabled(server.settings, document.languageId)) return null;
    if (ctx.triggerKind === vscode.InlineCompletionTriggerKind.Automatic && server.settings.debounceMs > 0) {
      await sleep(server.settings.debounceMs, token);
      if (token.isCancellationRequested) return null;
    }
    const t0 = performance.now();
    const result = await next(document, position, ctx, token);
    if (token.isCancellationRequested) return null;
    const items = !result ? [] : Array.isArray(result) ? result : result.items;
    server.emit({ kind: "completion", latencyMs: performance.now() - t0, items: items.length });
    const first = items[0];
    if (first && textOf(first).length > 0) {
      const start = first.range ? first.range.start : position;
      shown.set(uri, { uri, start: document.offsetAt(start), insertText: textOf(first) });
    } else {
      shown.delete(uri);
    }
    return result;
  };
  server.inlineMiddleware = provide;

  const acceptPart = async (unit: Unit): Promise<unknown> => {
    const editor = vscode.window.activeTextEditor;
    const fallback = unit === "word" ? "editor.action.inlineSuggest.acceptNextWord" : "editor.action.inlineSuggest.acceptNextLine";
    if (!editor) return;
    const doc = editor.document;
    const s = shown.get(doc.uri.toString());
    const cursor = doc.offsetAt(editor.selection.active);
    if (!s || !editor.selection.isEmpty || cursor < s.start) return vscode.commands.executeCommand(fallback);
    const typed = doc.getText(new vscode.Range(doc.positionAt(s.start), editor.selection.active));
    const part = partialAccept(s, typed, unit);
    if (!part) return vscode.commands.executeCommand(fallback);
    // The last piece is the whole rest: the editor's own accept also replaces the range after it.
    if (part.last) return vscode.commands.executeCommand("editor.action.inlineSuggest.commit");
    // A plain insert: a snippet would re-indent the lines of the piece.
    const at = editor.selection.active;
    return editor.edit((b) => b.insert(at, part.piece), { undoStopBefore: true, undoStopAfter: false });
  };

  context.subscriptions.push(
    vscode.commands.registerCommand("ghostline.acceptNextWord", () => acceptPart("word")),
    vscode.commands.registerCommand("ghostline.acceptNextLine", () => acceptPart("line")),
    vscode.workspace.onDidCloseTextDocument((d) => shown.delete(d.uri.toString())),
    { dispose: () => (server.inlineMiddleware = undefined) },
  );
}
