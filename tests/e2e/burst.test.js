#!/usr/bin/env node
// End to end with the real server and the embedded model: a burst of 100 didChange +
// inlineCompletion pairs (one per typed character, sent without waiting for answers, as a fast
// typist with an editor that asks on every keystroke). Every request is answered — a result or
// -32800 RequestCancelled, nothing else — the server stays alive, and ghostline/status shows
// that only a few of the 100 were computed in full by the engine: the rest were cancelled by
// the newer keystroke (lsp/latency_policy.h) or answered without the model.
// Run twice: with supersession alone, and with the client also sending $/cancelRequest for the
// previous request (what VS Code does).
// Usage: node burst.test.js path/to/ghostline
'use strict';
const assert = require('assert');
const { lsp, Session, settle, marked, runner } = require('./lsp_client');

const binary = process.argv[2];
if (!binary) {
  console.error('usage: burst.test.js GHOSTLINE_BINARY');
  process.exit(2);
}

const BURST = 100;
// At most this many of the burst may be computed in full by the engine: ideally only the last;
// a request that the worker finished before the next keystroke arrived is allowed for a few.
const MAX_ENGINE_ANSWERS = 3;

// Each burst types into its own function, so that the second one is not a cache hit of the first.
function source(functionName) {
  return marked([`def ${functionName}(words, target, cutoff=0.6):`, '    best = None', '    ^', '    return best', ''].join('\n'));
}
const TYPED = ('for word in words:\n        score = similarity(word, target)\n' +
               '        if score > cutoff and (best is None or score > best[0]):\n            best = (score, word)\n').slice(0, BURST);

function sumAnswers(status) { return Object.values(status.answers).reduce((a, b) => a + b, 0); }
function delta(after, before, source) { return (after.answers[source] || 0) - (before.answers[source] || 0); }

async function burst(session, name, functionName, cancelPrevious) {
  const start = source(functionName);
  const doc = session.open(`file:///tmp/ghostline-e2e/burst-${name}.py`, 'python', start.text);
  const before = await session.status();
  const requests = [];
  let previous = null;
  let cursor = start.cursor;
  for (const ch of TYPED) {
    doc.insert(cursor, ch);
    cursor += ch.length;
    if (cancelPrevious && previous) previous.cancel();
    const source = cancelPrevious ? new lsp.CancellationTokenSource() : null;
    requests.push(doc.inline(cursor, { token: source ? source.token : undefined }));
    previous = source;
  }
  assert.strictEqual(requests.length, BURST);
  const outcomes = await Promise.all(requests.map((r, i) => settle(r.promise, `${name}: request ${i + 1} of ${BURST}`)));
  const answered = outcomes.filter((o) => o.result).length;
  const cancelled = outcomes.filter((o) => o.cancelled).length;
  assert.strictEqual(answered + cancelled, BURST);
  const last = outcomes[BURST - 1];
  assert.ok(last.result, `${name}: the last request was not superseded by anything, yet it was cancelled`);
  for (const o of outcomes) if (o.result) assert.ok(Array.isArray(o.result.items), `${name}: ${JSON.stringify(o.result)}`);
  assert.ok(session.alive(), `${name}: the server exited: ${session.stderr}`);

  // The service records each request when its worker gets to it: wait until all 100 are in.
  const after = await session.statusWhen((s) => sumAnswers(s) + s.cancelled + s.failed - (sumAnswers(before) + before.cancelled + before.failed) >= BURST);
  const recorded = sumAnswers(after) + after.cancelled + after.failed - (sumAnswers(before) + before.cancelled + before.failed);
  const engine = delta(after, before, 'engine') + delta(after, before, 'engine-first-line');
  const serviceCancelled = after.cancelled - before.cancelled;
  const breakdown = {
    engine: delta(after, before, 'engine'), engineFirstLine: delta(after, before, 'engine-first-line'),
    cache: delta(after, before, 'cache'), typingThrough: delta(after, before, 'typing-through'), none: delta(after, before, 'none'),
    cancelled: serviceCancelled, failed: after.failed - before.failed, clientResults: answered, clientCancelled: cancelled,
  };
  console.log(`     ${name}: ${JSON.stringify(breakdown)}`);
  assert.strictEqual(recorded, BURST, `${name}: the service recorded ${recorded} requests, not ${BURST}: ${JSON.stringify(breakdown)}`);
  assert.strictEqual(breakdown.failed, 0, `${name}: failed requests`);
  assert.ok(engine <= MAX_ENGINE_ANSWERS, `${name}: ${engine} of ${BURST} computed in full by the engine (at most ${MAX_ENGINE_ANSWERS}): ${JSON.stringify(breakdown)}`);
  // Whatever the client saw cancelled was not answered by the service, except for a late answer
  // that lost the race with the cancellation (dropped by the server, counted by the service).
  assert.ok(cancelled >= serviceCancelled, `${name}: the client saw ${cancelled} cancellations, the service counted ${serviceCancelled}`);
  assert.ok(serviceCancelled >= BURST - MAX_ENGINE_ANSWERS - breakdown.typingThrough - breakdown.cache - breakdown.none,
            `${name}: too few cancelled: ${JSON.stringify(breakdown)}`);
}

const { test, run } = runner();
let session;

test('start the server; the model loads', async () => {
  session = new Session(binary);
  await session.initialize();
  const status = await session.statusWhen((s) => s.loaded || s.loadError !== '');
  assert.strictEqual(status.loaded, true, `model not loaded: ${status.loadError}`);
});

test(`a burst of ${BURST} didChange + inlineCompletion pairs (supersession)`, () => burst(session, 'supersede', 'closest', false));
test(`a burst of ${BURST} pairs, each previous request also cancelled by the client`, () => burst(session, 'cancel', 'nearest', true));

test('the server is still alive, answers, and exits cleanly', async () => {
  assert.ok(session.alive(), `server exited: ${session.stderr}`);
  const doc = session.open('file:///tmp/ghostline-e2e/after.py', 'python', 'def add(a, b):\n    return \n');
  const { result } = await settle(doc.inline(doc.text.indexOf('return ') + 7, { invoked: true }).promise, 'a request after the bursts');
  assert.ok(result && Array.isArray(result.items));
  const { code, signal } = await session.close();
  assert.strictEqual(signal, null, session.stderr);
  assert.strictEqual(code, 0, session.stderr);
});

process.on('exit', () => { if (session) session.kill(); });
run();
