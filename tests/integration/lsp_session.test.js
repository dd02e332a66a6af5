#!/usr/bin/env node
// Integration test: starts the built `ghostline lsp` and drives whole sessions with an
// independently written client library (vscode-jsonrpc + vscode-languageserver-protocol), over
// stdio and over TCP on 127.0.0.1, including malformed frames written to the raw pipe,
// cancellation, supersession, and the exit codes of shutdown/exit.
// Completion items are model output: the test checks their shape, never their text.
// Usage: node lsp_session.test.js path/to/ghostline
'use strict';
const { spawn } = require('child_process');
const net = require('net');
const assert = require('assert');
let lsp;
try {
  lsp = require('vscode-languageserver-protocol/node');
} catch (e) {
  console.error(`vscode-languageserver-protocol is not installed: run tools/setup.sh (npm ci in ${__dirname})`);
  process.exit(1);
}

const binary = process.argv[2];
if (!binary) {
  console.error('usage: lsp_session.test.js GHOSTLINE_BINARY');
  process.exit(2);
}
const STEP_TIMEOUT_MS = 90000;  // a first completion may load a model on the CPU

function within(promise, what) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), STEP_TIMEOUT_MS);
  })]).finally(() => clearTimeout(timer));
}

function startStdio() {
  const proc = spawn(binary, ['lsp'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  proc.stderr.on('data', (c) => { stderr += c; });
  const conn = lsp.createProtocolConnection(new lsp.StreamMessageReader(proc.stdout), new lsp.StreamMessageWriter(proc.stdin));
  return { proc, conn, exited, stderr: () => stderr };
}

async function startTcp() {
  const proc = spawn(binary, ['lsp', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let stderr = '';
  const port = await within(new Promise((resolve, reject) => {
    proc.stderr.on('data', (c) => {
      stderr += c;
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    proc.on('exit', (code) => reject(new Error(`server exited (${code}) before listening: ${stderr}`)));
  }), 'the server to listen');
  const socket = await within(new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  }), 'connecting');
  const conn = lsp.createProtocolConnection(new lsp.SocketMessageReader(socket), new lsp.SocketMessageWriter(socket));
  return { proc, conn, exited, socket, stderr: () => stderr };
}

// Collects what the server sends on its own.
function listen(conn) {
  const seen = { logs: [], progress: [], diagnostics: [], creates: 0 };
  conn.onNotification(lsp.LogMessageNotification.type, (p) => seen.logs.push(p));
  conn.onNotification(lsp.PublishDiagnosticsNotification.type, (p) => seen.diagnostics.push(p));
  conn.onProgress(lsp.WorkDoneProgress.type, 'ignored', () => {});
  conn.onNotification('$/progress', (p) => seen.progress.push(p));
  conn.onRequest(lsp.WorkDoneProgressCreateRequest.type, () => { seen.creates++; return null; });
  conn.listen();
  return seen;
}

async function expectError(promise, code, what) {
  try {
    await within(promise, what);
  } catch (e) {
    assert.ok(e instanceof lsp.ResponseError, `${what}: ${e}`);
    assert.strictEqual(e.code, code, `${what}: ${e.message}`);
    return e;
  }
  assert.fail(`${what}: expected error ${code}, got a result`);
}

const uri = 'file:///tmp/ghostline-it/main.py';
const text = 'import os\r\n# 😀 数字 é\r\ndef total(xs):\r\n    ret';

async function initialize(conn, encodings) {
  const result = await within(conn.sendRequest(lsp.InitializeRequest.type, {
    processId: process.pid, rootUri: null, workspaceFolders: null,
    capabilities: { general: { positionEncodings: encodings }, window: { workDoneProgress: true },
      textDocument: { inlineCompletion: {}, completion: { completionItem: {} },
        codeAction: { dataSupport: true, resolveSupport: { properties: ['edit'] } } } },
    initializationOptions: { ghostline: { maxTokens: 16 } },
  }), 'initialize');
  await conn.sendNotification(lsp.InitializedNotification.type, {});
  return result;
}

function inlineParams(position, triggerKind = lsp.InlineCompletionTriggerKind.Automatic) {
  return { textDocument: { uri }, position, context: { triggerKind } };
}

function checkInlineList(result, what) {
  assert.ok(result && Array.isArray(result.items), `${what}: InlineCompletionList expected, got ${JSON.stringify(result)}`);
  for (const item of result.items) {
    assert.strictEqual(typeof item.insertText, 'string', what);
    if (item.range) assert.ok(Number.isInteger(item.range.start.line), what);
  }
}

async function settlesOnce(promise, what) {
  try {
    const r = await within(promise, what);
    return { result: r };
  } catch (e) {
    assert.ok(e instanceof lsp.ResponseError, `${what}: ${e}`);
    assert.strictEqual(e.code, lsp.LSPErrorCodes.RequestCancelled, `${what}: ${e.message}`);
    return { cancelled: true };
  }
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test('stdio: a whole session, malformed frames, cancellation, shutdown + exit → 0', async () => {
  const s = startStdio();
  const seen = listen(s.conn);
  await expectError(s.conn.sendRequest(lsp.CompletionRequest.type, { textDocument: { uri }, position: { line: 0, character: 0 } }),
                    -32002, 'request before initialize');

  const init = await initialize(s.conn, ['utf-16']);
  assert.strictEqual(init.capabilities.positionEncoding, 'utf-16');
  assert.strictEqual(init.serverInfo.name, 'ghostline');
  assert.ok(init.capabilities.inlineCompletionProvider);
  assert.strictEqual(init.capabilities.codeActionProvider.resolveProvider, true);

  await s.conn.sendNotification(lsp.DidOpenTextDocumentNotification.type,
                                { textDocument: { uri, languageId: 'python', version: 1, text } });
  await s.conn.sendNotification(lsp.DidChangeTextDocumentNotification.type, {
    textDocument: { uri, version: 2 },
    contentChanges: [{ range: { start: { line: 3, character: 7 }, end: { line: 3, character: 7 } }, text: 'urn' },
                     { range: { start: { line: 1, character: 2 }, end: { line: 1, character: 4 } }, text: '🙂' }],
  });
  checkInlineList(await within(s.conn.sendRequest(lsp.InlineCompletionRequest.type,
                                                  inlineParams({ line: 3, character: 10 }, lsp.InlineCompletionTriggerKind.Invoked)),
                               'inline completion'), 'inline completion');
  const list = await within(s.conn.sendRequest(lsp.CompletionRequest.type, { textDocument: { uri }, position: { line: 3, character: 10 } }),
                            'completion');
  assert.ok(Array.isArray(list.items), `CompletionList expected, got ${JSON.stringify(list)}`);
  for (const item of list.items) assert.ok(item.textEdit && typeof item.textEdit.newText === 'string');

  // Malformed frames written straight to the pipe: each is refused, the session goes on.
  s.proc.stdin.write('Content-Length: 9\r\n\r\n{bad json');
  s.proc.stdin.write('Content-Type: text/plain\r\n\r\n{"x":1}');
  s.proc.stdin.write('Content-Length: 99999999999\r\n\r\n');
  s.proc.stdin.write('Content-Length: 12\r\n\r\n[1,2,3,4,5] ');
  await expectError(s.conn.sendRequest('textDocument/hover', {}), -32601, 'unknown method after malformed frames');
  await expectError(s.conn.sendRequest(lsp.InlineCompletionRequest.type, { textDocument: 42 }), -32602, 'bad params');

  // Cancellation: the request answers exactly once, with a result or -32800, and the server goes on.
  const source = new lsp.CancellationTokenSource();
  const cancelled = s.conn.sendRequest(lsp.InlineCompletionRequest.type, inlineParams({ line: 3, character: 10 }), source.token);
  source.cancel();
  const outcome = await settlesOnce(cancelled, 'cancelled request');
  if (outcome.result) checkInlineList(outcome.result, 'cancelled request');

  // Supersession: three quick requests for one document; the last one gets a list.
  const quick = [8, 9, 10].map((c) => s.conn.sendRequest(lsp.InlineCompletionRequest.type, inlineParams({ line: 3, character: c })));
  const outcomes = await Promise.all(quick.map((p, i) => settlesOnce(p, `request ${i}`)));
  assert.ok(outcomes[2].result, 'the newest request is answered with a list');
  checkInlineList(outcomes[2].result, 'newest request');

  // Quick fixes: one action per diagnostic; resolve answers with the action (edit optional).
  const diagnostic = { range: { start: { line: 2, character: 0 }, end: { line: 2, character: 3 } }, message: 'invalid syntax', severity: 1 };
  const actions = await within(s.conn.sendRequest(lsp.CodeActionRequest.type, {
    textDocument: { uri }, range: diagnostic.range, context: { diagnostics: [diagnostic] } }), 'code action');
  assert.strictEqual(actions.length, 1);
  assert.strictEqual(actions[0].title, 'Fix with Ghostline: invalid syntax');
  assert.strictEqual(actions[0].edit, undefined);
  const resolved = await within(s.conn.sendRequest(lsp.CodeActionResolveRequest.type, actions[0]), 'resolve');
  assert.strictEqual(resolved.title, actions[0].title);
  if (resolved.edit) assert.ok(Array.isArray(resolved.edit.changes[uri]));

  await s.conn.sendNotification(lsp.DidChangeConfigurationNotification.type, { settings: { ghostline: { temperature: 0 } } });
  await s.conn.sendNotification(lsp.SetTraceNotification.type, { value: 'messages' });
  await s.conn.sendNotification(lsp.DidSaveTextDocumentNotification.type, { textDocument: { uri } });
  await s.conn.sendNotification(lsp.DidCloseTextDocumentNotification.type, { textDocument: { uri } });
  assert.strictEqual(await within(s.conn.sendRequest(lsp.ShutdownRequest.type), 'shutdown'), null);
  await expectError(s.conn.sendRequest(lsp.CompletionRequest.type, { textDocument: { uri }, position: { line: 0, character: 0 } }),
                    -32600, 'request after shutdown');
  await s.conn.sendNotification(lsp.ExitNotification.type);
  const { code, signal } = await within(s.exited, 'exit');
  assert.strictEqual(signal, null, s.stderr());
  assert.strictEqual(code, 0, s.stderr());
  assert.ok(seen.diagnostics.some((d) => d.uri === uri && d.diagnostics.length === 0), 'didClose clears diagnostics');
  s.conn.dispose();
});

test('stdio: exit without shutdown → 1', async () => {
  const s = startStdio();
  listen(s.conn);
  await initialize(s.conn, ['utf-8']);
  await s.conn.sendNotification(lsp.ExitNotification.type);
  assert.strictEqual((await within(s.exited, 'exit')).code, 1);
  s.conn.dispose();
});

test('stdio: the client going away without exit → 1', async () => {
  const s = startStdio();
  listen(s.conn);
  await initialize(s.conn, []);
  s.proc.stdin.end();
  assert.strictEqual((await within(s.exited, 'end of input')).code, 1);
  s.conn.dispose();
});

test('stdio: UTF-32 negotiated, positions after an emoji', async () => {
  const s = startStdio();
  listen(s.conn);
  const init = await initialize(s.conn, ['utf-32', 'utf-16']);
  assert.strictEqual(init.capabilities.positionEncoding, 'utf-32');
  await s.conn.sendNotification(lsp.DidOpenTextDocumentNotification.type,
                                { textDocument: { uri, languageId: 'python', version: 1, text: 'x = "😀"\n' } });
  const diagnostic = { range: { start: { line: 0, character: 5 }, end: { line: 0, character: 6 } }, message: 'm' };
  const actions = await within(s.conn.sendRequest(lsp.CodeActionRequest.type, {
    textDocument: { uri }, range: diagnostic.range, context: { diagnostics: [diagnostic] } }), 'code action');
  assert.deepStrictEqual(actions[0].diagnostics[0].range, diagnostic.range);
  await within(s.conn.sendRequest(lsp.ShutdownRequest.type), 'shutdown');
  await s.conn.sendNotification(lsp.ExitNotification.type);
  assert.strictEqual((await within(s.exited, 'exit')).code, 0);
  s.conn.dispose();
});

test('tcp 127.0.0.1: a session, a malformed frame, shutdown + exit → 0', async () => {
  const s = await startTcp();
  listen(s.conn);
  const init = await initialize(s.conn, ['utf-16']);
  assert.strictEqual(init.serverInfo.name, 'ghostline');
  await s.conn.sendNotification(lsp.DidOpenTextDocumentNotification.type,
                                { textDocument: { uri, languageId: 'python', version: 1, text } });
  checkInlineList(await within(s.conn.sendRequest(lsp.InlineCompletionRequest.type, inlineParams({ line: 3, character: 7 })),
                               'inline completion over TCP'), 'tcp');
  s.socket.write('Content-Length: 3\r\n\r\n{x}');
  await expectError(s.conn.sendRequest('no/such/method', {}), -32601, 'unknown method over TCP');
  await within(s.conn.sendRequest(lsp.ShutdownRequest.type), 'shutdown');
  await s.conn.sendNotification(lsp.ExitNotification.type);
  const { code } = await within(s.exited, 'exit');
  assert.strictEqual(code, 0, s.stderr());
  s.conn.dispose();
  s.socket.destroy();
});

(async () => {
  let failed = 0;
  for (const t of tests) {
    try {
      await t.fn();
      console.log(`ok   ${t.name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name}\n${e.stack || e}`);
    }
  }
  process.exit(failed ? 1 : 0);
})();
