#!/usr/bin/env node
// End to end with the real server and the embedded model: inline completions for obvious
// contexts in Python and C++ are non-empty and syntactically sane. Sane: with the suggestion
// applied (a didChange, as an editor does on accept), the server's own syntax diagnostics for
// the new version are no more than for the version before; for Python, in addition, Python's
// own parser (`ast.parse`) accepts the result whenever it accepted the text before.
// The check is itself checked: a deliberately broken insertion must fail it.
// Usage: node suggestions.test.js path/to/ghostline
'use strict';
const assert = require('assert');
const { execFileSync } = require('child_process');
const { Session, settle, marked, runner } = require('./lsp_client');

const binary = process.argv[2];
if (!binary) {
  console.error('usage: suggestions.test.js GHOSTLINE_BINARY');
  process.exit(2);
}

function pythonParses(text) {
  try {
    execFileSync('python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())'], { input: text, stdio: ['pipe', 'ignore', 'ignore'] });
    return true;
  } catch (e) {
    if (e.code === 'ENOENT') throw new Error('python3 not found (tools/setup.sh installs it)');
    return false;
  }
}

// Applies `insertText` over `range` (or at the cursor) and compares the syntax before and after.
// Returns {ok, why, after}.
async function saneAfter(session, doc, cursor, insertText, range) {
  const before = await session.diagnosticsFor(doc.uri, doc.version);
  const textBefore = doc.text;
  const start = range ? doc.offset(range.start) : cursor;
  const end = range ? doc.offset(range.end) : cursor;
  const version = doc.edit(start, end, insertText);
  const after = await session.diagnosticsFor(doc.uri, version);
  const problems = [];
  if (after.length > before.length)
    problems.push(`syntax diagnostics ${before.length} -> ${after.length}: ${after.map((d) => d.message).join('; ')}`);
  if (doc.uri.endsWith('.py') && pythonParses(textBefore) && !pythonParses(doc.text))
    problems.push('ast.parse accepted the text before and rejects it after');
  return { ok: problems.length === 0, why: problems.join(' and '), after: doc.text };
}

// Obvious contexts (^ is the cursor). Their expected text is not asserted (model output), only
// that something sane comes.
const CASES = [
  { name: 'python: return after def add(a, b)', uri: 'add.py', lang: 'python', src: 'def add(a, b):\n    return ^\n' },
  { name: 'python: n % in is_even', uri: 'even.py', lang: 'python', src: 'def is_even(n):\n    return n % ^\n' },
  { name: 'python: return in greet', uri: 'greet.py', lang: 'python',
    src: 'def greet(name):\n    message = "Hello, " + name\n    return ^\n' },
  { name: 'python: an unclosed call inside a loop', uri: 'squares.py', lang: 'python',
    src: 'def squares(n):\n    result = []\n    for i in range(n):\n        result.append(^\n    return result\n' },
  { name: 'python: a new line in __init__ (multi-line)', uri: 'point.py', lang: 'python',
    src: 'class Point:\n    def __init__(self, x, y):\n        self.x = x\n        ^\n' },
  { name: 'c++: return in max_of', uri: 'max.cpp', lang: 'cpp', src: 'int max_of(int a, int b) {\n  return ^\n}\n' },
  { name: 'c++: the body of a for loop', uri: 'loop.cpp', lang: 'cpp',
    src: '#include <vector>\n\nint sum(const std::vector<int>& values) {\n  int total = 0;\n' +
         '  for (size_t i = 0; i < values.size(); ++i) {\n    ^\n  }\n  return total;\n}\n' },
  { name: 'c++: the body of a range for (multi-line)', uri: 'split.cpp', lang: 'cpp',
    src: '#include <string>\n#include <vector>\n\nstd::vector<std::string> split(const std::string& s, char sep) {\n' +
         '  std::vector<std::string> parts;\n  std::string current;\n  for (char c : s) {\n    ^\n  }\n  return parts;\n}\n' },
  { name: 'c++: the rest of an expression', uri: 'dot.cpp', lang: 'cpp',
    src: 'struct Point {\n  int x;\n  int y;\n};\n\nint dot(const Point& a, const Point& b) {\n  return a.x * b.x + ^\n}\n' },
];

const { test, run } = runner();
let session;

test('start the server with the embedded model', async () => {
  session = new Session(binary);
  const init = await session.initialize();
  assert.strictEqual(init.serverInfo.name, 'ghostline');
});

test('the sanity check rejects a broken insertion (Python and C++)', async () => {
  for (const [uri, lang, src, broken] of [['broken.py', 'python', 'def f(x):\n    return ^\n', 'x + (]'],
                                           ['broken.cpp', 'cpp', 'int f(int x) {\n  return ^;\n}\n', 'x + (]']]) {
    const { text, cursor } = marked(src);
    const doc = session.open(`file:///tmp/ghostline-e2e/${uri}`, lang, text);
    const verdict = await saneAfter(session, doc, cursor, broken);
    assert.ok(!verdict.ok, `${uri}: inserting ${JSON.stringify(broken)} must fail the check`);
  }
});

for (const c of CASES) {
  test(c.name, async () => {
    const { text, cursor } = marked(c.src);
    const doc = session.open(`file:///tmp/ghostline-e2e/${c.uri}`, c.lang, text);
    const { id, promise } = doc.inline(cursor, { invoked: true });
    const { result, cancelled } = await settle(promise, c.name);
    assert.ok(!cancelled, `${c.name}: nothing superseded this request, yet it was cancelled`);
    assert.ok(result && Array.isArray(result.items), `${c.name}: an InlineCompletionList expected, got ${JSON.stringify(result)}`);
    assert.ok(result.items.length >= 1, `${c.name}: no suggestion`);
    const item = result.items[0];
    assert.ok(item.insertText.trim().length > 0, `${c.name}: blank suggestion ${JSON.stringify(item.insertText)}`);
    const stats = await session.statsFor(id);
    assert.ok(['engine', 'engine-first-line', 'cache'].includes(stats.source), `${c.name}: source ${stats.source}`);
    const verdict = await saneAfter(session, doc, cursor, item.insertText, item.range);
    assert.ok(verdict.ok, `${c.name}: suggestion ${JSON.stringify(item.insertText)} is not sane: ${verdict.why}\n--- after ---\n${verdict.after}`);
    console.log(`     ${JSON.stringify(item.insertText)} (${stats.source}, ${stats.totalMs.toFixed(0)} ms)`);
  });
}

test('the server is still alive and exits cleanly', async () => {
  assert.ok(session.alive(), `server exited: ${session.stderr}`);
  const status = await session.status();
  assert.strictEqual(status.loaded, true, `model not loaded: ${status.loadError}`);
  assert.strictEqual(status.failed, 0);
  const { code, signal } = await session.close();
  assert.strictEqual(signal, null, session.stderr);
  assert.strictEqual(code, 0, session.stderr);
});

process.on('exit', () => { if (session) session.kill(); });
run();
