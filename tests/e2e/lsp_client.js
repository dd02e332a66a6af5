// A small editor-like client for end-to-end tests and bench/lsp_latency: starts the real
// `ghostline lsp` over stdio and drives it with vscode-jsonrpc + vscode-languageserver-protocol
// (the packages pinned in tests/integration, whose node_modules tools/setup.sh installs).
//
// What it adds over the plain connection: the JSON-RPC id of every request it sends (so that a
// `ghostline/completionStats` notification can be matched to its request), documents that keep
// their text and version and turn offset edits into incremental didChange notifications
// (UTF-16 positions, the LSP default, which JavaScript string offsets already are), and the
// diagnostics the server published per document version.
'use strict';
const { spawn } = require('child_process');
const path = require('path');

const INTEGRATION_DIR = path.join(__dirname, '..', 'integration');

function loadProtocol() {
  try {
    return require(require.resolve('vscode-languageserver-protocol/node', { paths: [INTEGRATION_DIR] }));
  } catch (e) {
    console.error(`vscode-languageserver-protocol is not installed: run tools/setup.sh (npm ci in ${INTEGRATION_DIR})`);
    process.exit(1);
  }
}
const lsp = loadProtocol();

// Rejects after `ms` with a message naming what was awaited (a hang fails the test instead of
// stalling it; never a timing assertion).
function within(promise, what, ms = 120000) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  })]).finally(() => clearTimeout(timer));
}

// A StreamMessageWriter that remembers the id of the last request it was handed. vscode-jsonrpc
// calls write() synchronously inside sendRequest(), so the id is known when sendRequest returns.
class TappedWriter extends lsp.StreamMessageWriter {
  write(message) {
    if (message.method !== undefined && message.id !== undefined) this.lastRequestId = message.id;
    return super.write(message);
  }
}

class Session {
  // Spawns `binary lsp ...args` and listens; call initialize() next.
  constructor(binary, args = []) {
    this.spawnedAt = performance.now();
    this.proc = spawn(binary, ['lsp', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.stderr = '';
    this.proc.stderr.on('data', (c) => { this.stderr += c; });
    this.exitState = null;
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => {
      this.exitState = { code, signal };
      resolve(this.exitState);
    }));
    this.writer = new TappedWriter(this.proc.stdin);
    this.conn = lsp.createProtocolConnection(new lsp.StreamMessageReader(this.proc.stdout), this.writer);
    this.stats = new Map();          // request id -> ghostline/completionStats params
    this.statsWaiters = new Map();   // request id -> resolve
    this.diagnostics = new Map();    // `${uri}@${version}` -> diagnostics
    this.diagnosticWaiters = [];
    this.logs = [];
    this.conn.onNotification('ghostline/completionStats', (p) => {
      this.stats.set(p.requestId, p);
      const w = this.statsWaiters.get(p.requestId);
      if (w) {
        this.statsWaiters.delete(p.requestId);
        w(p);
      }
    });
    this.conn.onNotification(lsp.PublishDiagnosticsNotification.type, (p) => {
      this.diagnostics.set(`${p.uri}@${p.version}`, p.diagnostics);
      this.diagnosticWaiters = this.diagnosticWaiters.filter((w) => !w(p));
    });
    this.conn.onNotification(lsp.LogMessageNotification.type, (p) => this.logs.push(p.message));
    this.conn.onRequest(lsp.WorkDoneProgressCreateRequest.type, () => null);
    this.conn.onNotification('$/progress', () => {});
    this.conn.listen();
  }

  async initialize(initializationOptions = undefined) {
    const result = await within(this.conn.sendRequest(lsp.InitializeRequest.type, {
      processId: process.pid, rootUri: null, workspaceFolders: null,
      capabilities: { textDocument: { inlineCompletion: {}, completion: { completionItem: {} } } },
      initializationOptions,
    }), 'initialize');
    await this.conn.sendNotification(lsp.InitializedNotification.type, {});
    return result;
  }

  // Sends a request; returns {id, promise}. `token` (a CancellationToken) sends $/cancelRequest
  // when cancelled, as editors do.
  request(method, params, token) {
    const promise = token ? this.conn.sendRequest(method, params, token) : this.conn.sendRequest(method, params);
    return { id: this.writer.lastRequestId, promise };
  }

  status() { return within(this.conn.sendRequest('ghostline/status'), 'ghostline/status'); }

  // Polls ghostline/status until `done(status)` holds (or `ms` pass); returns the last status.
  async statusWhen(done, ms = 20000) {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = await this.status();
      if (done(s) || Date.now() > deadline) return s;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // The completionStats notification for request `id` (it follows the reply).
  statsFor(id, ms = 20000) {
    if (this.stats.has(id)) return Promise.resolve(this.stats.get(id));
    return within(new Promise((resolve) => this.statsWaiters.set(id, resolve)), `completionStats for request ${id}`, ms);
  }

  // The diagnostics published for `uri` at `version`.
  diagnosticsFor(uri, version, ms = 20000) {
    const key = `${uri}@${version}`;
    if (this.diagnostics.has(key)) return Promise.resolve(this.diagnostics.get(key));
    return within(new Promise((resolve) => this.diagnosticWaiters.push((p) => {
      if (p.uri !== uri || p.version !== version) return false;
      resolve(p.diagnostics);
      return true;
    })), `diagnostics of ${uri} version ${version}`, ms);
  }

  open(uri, languageId, text) { return new Doc(this, uri, languageId, text); }

  alive() { return this.exitState === null; }

  // shutdown + exit; returns the exit state.
  async close() {
    await within(this.conn.sendRequest(lsp.ShutdownRequest.type), 'shutdown');
    await this.conn.sendNotification(lsp.ExitNotification.type);
    const state = await within(this.exited, 'exit');
    this.conn.dispose();
    return state;
  }

  kill() {
    if (this.alive()) this.proc.kill('SIGKILL');
    this.conn.dispose();
  }
}

class Doc {
  constructor(session, uri, languageId, text) {
    this.session = session;
    this.uri = uri;
    this.text = text;
    this.version = 1;
    session.conn.sendNotification(lsp.DidOpenTextDocumentNotification.type,
                                  { textDocument: { uri, languageId, version: 1, text } });
  }

  position(offset) {
    let line = 0, lineStart = 0;
    for (let i = this.text.indexOf('\n'); i !== -1 && i < offset; i = this.text.indexOf('\n', i + 1)) {
      ++line;
      lineStart = i + 1;
    }
    return { line, character: offset - lineStart };
  }

  offset(position) {
    let start = 0;
    for (let l = 0; l < position.line; ++l) start = this.text.indexOf('\n', start) + 1;
    return start + position.character;
  }

  // Replaces [start, end) with `text` and sends one incremental didChange; returns the version.
  edit(start, end, text) {
    const range = { start: this.position(start), end: this.position(end) };
    this.text = this.text.slice(0, start) + text + this.text.slice(end);
    this.version += 1;
    this.session.conn.sendNotification(lsp.DidChangeTextDocumentNotification.type, {
      textDocument: { uri: this.uri, version: this.version }, contentChanges: [{ range, text }] });
    return this.version;
  }

  insert(offset, text) { return this.edit(offset, offset, text); }

  // An inline completion at `offset` (a JavaScript string index = UTF-16 units); returns {id, promise}.
  inline(offset, { token, invoked = false } = {}) {
    return this.session.request(lsp.InlineCompletionRequest.type.method, {
      textDocument: { uri: this.uri }, position: this.position(offset),
      context: { triggerKind: invoked ? lsp.InlineCompletionTriggerKind.Invoked : lsp.InlineCompletionTriggerKind.Automatic },
    }, token);
  }
}

// Settles a request promise to {result} or {cancelled: true}; any other error is thrown.
async function settle(promise, what) {
  try {
    return { result: await within(promise, what) };
  } catch (e) {
    if (e instanceof lsp.ResponseError && e.code === lsp.LSPErrorCodes.RequestCancelled) return { cancelled: true };
    throw new Error(`${what}: ${e.code !== undefined ? `error ${e.code}: ` : ''}${e.message}`);
  }
}

// Text with one `^` marking the cursor -> {text, cursor}.
function marked(source) {
  const cursor = source.indexOf('^');
  if (cursor < 0 || source.indexOf('^', cursor + 1) >= 0) throw new Error(`exactly one ^ expected in ${JSON.stringify(source)}`);
  return { text: source.slice(0, cursor) + source.slice(cursor + 1), cursor };
}

// A tiny test runner: named async tests, run in order, a summary and the exit code.
function runner() {
  const tests = [];
  return {
    test: (name, fn) => tests.push({ name, fn }),
    async run() {
      let failed = 0;
      for (const t of tests) {
        const t0 = Date.now();
        try {
          await t.fn();
          console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
        } catch (e) {
          failed++;
          console.log(`FAIL ${t.name}\n${e.stack || e}`);
        }
      }
      console.log(`${tests.length - failed}/${tests.length} passed`);
      process.exit(failed ? 1 : 0);
    },
  };
}

module.exports = { lsp, within, Session, Doc, settle, marked, runner };
