#!/usr/bin/env node
// End to end with the real server and the embedded model: typing-through. After a suggestion S
// at a cursor, typing S's first k characters (one didChange + inlineCompletion per character)
// answers exactly S[k:] with source typing-through (ghostline/completionStats of that request);
// a character that differs from S[k] is answered by the engine (or the cache), never with a
// stale remainder; undoing back to the start is a suggestion-cache hit that answers S again.
// Usage: node typing_through.test.js path/to/ghostline
'use strict';
const assert = require('assert');
const { Session, settle, marked, runner } = require('./lsp_client');

const binary = process.argv[2];
if (!binary) {
  console.error('usage: typing_through.test.js GHOSTLINE_BINARY');
  process.exit(2);
}

// Single-line contexts: a multi-line suggestion may be answered with its first line early and
// then remembered whole, which is a different (documented) path.
const CASES = [
  { name: 'python return', uri: 'tt_add.py', lang: 'python', src: 'def add(a, b):\n    return ^\n' },
  { name: 'python return of a local', uri: 'tt_greet.py', lang: 'python',
    src: 'def greet(name):\n    message = "Hello, " + name\n    return ^\n' },
  { name: 'c++ return', uri: 'tt_max.cpp', lang: 'cpp', src: 'int max_of(int a, int b) {\n  return ^\n}\n' },
];

// One request at `cursor`, awaited, with its completionStats: {text, source, item}.
async function ask(session, doc, cursor, what) {
  const { id, promise } = doc.inline(cursor);
  const { result, cancelled } = await settle(promise, what);
  assert.ok(!cancelled, `${what}: cancelled, though nothing superseded it`);
  assert.ok(result && Array.isArray(result.items), `${what}: ${JSON.stringify(result)}`);
  const stats = await session.statsFor(id);
  const item = result.items[0];
  return { text: item ? item.insertText : '', source: stats.source, item };
}

const { test, run } = runner();
let session;

test('start the server with the embedded model', async () => {
  session = new Session(binary);
  await session.initialize();
});

for (const c of CASES) {
  test(`${c.name}: the remainder while typing, a fresh answer after a differing character, the cache after undo`, async () => {
    const { text, cursor } = marked(c.src);
    const doc = session.open(`file:///tmp/ghostline-e2e/${c.uri}`, c.lang, text);
    const first = await ask(session, doc, cursor, `${c.name}: first request`);
    const S = first.text;
    assert.ok(['engine', 'cache'].includes(first.source), `${c.name}: first answer from ${first.source}`);
    assert.ok(S.length >= 3, `${c.name}: the suggestion ${JSON.stringify(S)} is too short to type through`);

    // Type S's first k characters, k = 1 .. |S| - 2; each answer is S[k:], from typing-through.
    const stop = S.length - 2;
    for (let k = 1; k <= stop; ++k) {
      doc.insert(cursor + k - 1, S[k - 1]);
      const r = await ask(session, doc, cursor + k, `${c.name}: after typing ${k} characters`);
      assert.strictEqual(r.source, 'typing-through', `${c.name}: k=${k}: source`);
      assert.strictEqual(r.text, S.slice(k), `${c.name}: k=${k}: remainder`);
      assert.deepStrictEqual(r.item.range, { start: doc.position(cursor + k), end: doc.position(cursor + k) },
                             `${c.name}: k=${k}: the remainder is inserted at the cursor`);
    }

    // A character that differs from S[stop + 1]: the model answers again (or the cache), never
    // the old remainder.
    const k = stop + 1;
    const other = S[k - 1] === 'x' ? 'z' : 'x';
    doc.insert(cursor + k - 1, other);
    const fresh = await ask(session, doc, cursor + k, `${c.name}: after a differing character`);
    assert.ok(['engine', 'engine-first-line', 'cache'].includes(fresh.source),
              `${c.name}: after typing ${JSON.stringify(other)} instead of ${JSON.stringify(S[k - 1])} the source is ${fresh.source}`);
    console.log(`     ${JSON.stringify(S)}: typed through ${stop} characters, then ${JSON.stringify(other)} -> ` +
                `${JSON.stringify(fresh.text)} (${fresh.source})`);

    // Undo, one backspace at a time, back to the start: the first prompt again, a cache hit.
    let at = cursor + k;
    while (at > cursor) {
      doc.edit(at - 1, at, '');
      --at;
      const r = await ask(session, doc, at, `${c.name}: after a backspace to ${at - cursor}`);
      assert.notStrictEqual(r.source, 'typing-through', `${c.name}: a backspace is not typing through`);
      if (at === cursor) {
        assert.strictEqual(doc.text, text);
        assert.strictEqual(r.source, 'cache', `${c.name}: back at the start`);
        assert.strictEqual(r.text, S, `${c.name}: the cached suggestion`);
      }
    }
  });
}

test('the status counts the typing-through answers; the server exits cleanly', async () => {
  const status = await session.status();
  assert.ok((status.answers['typing-through'] || 0) >= CASES.length, JSON.stringify(status.answers));
  assert.ok((status.answers.cache || 0) >= CASES.length, JSON.stringify(status.answers));
  assert.strictEqual(status.failed, 0);
  const { code, signal } = await session.close();
  assert.strictEqual(signal, null, session.stderr);
  assert.strictEqual(code, 0, session.stderr);
});

process.on('exit', () => { if (session) session.kill(); });
run();
