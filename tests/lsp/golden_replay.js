#!/usr/bin/env node
// Replays golden conversations (tests/lsp/golden/*.json) against the real `ghostline lsp`.
//
// A golden file: {"description", "ignore": [paths], "allow_extra": [methods], "exit_code",
// "conversation": [steps]}. A step is {"send": message}, {"send_raw": "bytes"} (written as is,
// for malformed frames) or {"expect": message, "ignore": [paths]}: the next server message,
// skipping notifications and requests whose method is in allow_extra, must equal `expect`
// once the ignored dotted paths (volatile fields, e.g. model output) are deleted from both.
// After the last step the server must exit with exit_code and have sent nothing else.
// Usage: golden_replay.js GHOSTLINE_BINARY GOLDEN_DIR_OR_FILE...
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const assert = require('assert');

const TIMEOUT_MS = 60000;  // per step: a first completion may load a model on the CPU

function frame(message) {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  return Buffer.concat([Buffer.from(`Content-Length: ${body.length}\r\n\r\n`, 'ascii'), body]);
}

// Incremental Content-Length parser for the server's output.
class Parser {
  constructor() { this.buf = Buffer.alloc(0); this.messages = []; this.waiters = []; }
  feed(chunk) {
    this.buf = Buffer.concat([this.buf, chunk]);
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const header = this.buf.subarray(0, end).toString('ascii');
      const m = /Content-Length:\s*(\d+)/i.exec(header);
      if (!m) throw new Error(`server wrote a header without Content-Length: ${header}`);
      const len = Number(m[1]);
      if (this.buf.length < end + 4 + len) return;
      const body = this.buf.subarray(end + 4, end + 4 + len).toString('utf8');
      this.buf = this.buf.subarray(end + 4 + len);
      this.messages.push(JSON.parse(body));
      this.waiters.splice(0).forEach((w) => w());
    }
  }
  async next(allowExtra, what) {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      while (this.messages.length) {
        const m = this.messages.shift();
        if (m.method && allowExtra.includes(m.method)) continue;
        return m;
      }
      if (this.closed || Date.now() > deadline) throw new Error(`no server message for ${what}`);
      await new Promise((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  }
}

function without(value, paths) {
  const copy = JSON.parse(JSON.stringify(value));
  for (const p of paths) {
    const keys = p.split('.');
    let node = copy;
    for (let i = 0; node && typeof node === 'object' && i < keys.length - 1; ++i) node = node[keys[i]];
    if (node && typeof node === 'object') delete node[keys[keys.length - 1]];
  }
  return copy;
}

async function replay(binary, file) {
  const golden = JSON.parse(fs.readFileSync(file, 'utf8'));
  const allowExtra = golden.allow_extra || [];
  const server = spawn(binary, ['lsp'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const parser = new Parser();
  let stderr = '';
  server.stdout.on('data', (c) => parser.feed(c));
  server.stderr.on('data', (c) => { stderr += c; });
  const exited = new Promise((resolve) => server.on('exit', (code, signal) => {
    parser.closed = true;
    parser.waiters.splice(0).forEach((w) => w());
    resolve({ code, signal });
  }));
  try {
    for (const [i, step] of golden.conversation.entries()) {
      if (step.send) server.stdin.write(frame(step.send));
      else if (step.send_raw !== undefined) server.stdin.write(Buffer.from(step.send_raw, 'utf8'));
      else if (step.expect) {
        const ignore = (golden.ignore || []).concat(step.ignore || []);
        const actual = await parser.next(allowExtra, `step ${i}`);
        for (const p of step.present || []) {
          const keys = p.split('.');
          let node = actual;
          for (const k of keys) node = node === undefined ? undefined : node[k];
          assert.notStrictEqual(node, undefined, `${path.basename(file)} step ${i}: ${p} missing in ${JSON.stringify(actual)}`);
        }
        assert.deepStrictEqual(without(actual, ignore), without(step.expect, ignore),
                               `${path.basename(file)} step ${i} (${step.note || ''})`);
      }
    }
    const timer = setTimeout(() => server.kill('SIGKILL'), TIMEOUT_MS);
    const { code, signal } = await exited;
    clearTimeout(timer);
    assert.strictEqual(signal, null, `${path.basename(file)}: server killed by ${signal}\n${stderr}`);
    assert.strictEqual(code, golden.exit_code, `${path.basename(file)}: exit code\n${stderr}`);
    const rest = parser.messages.filter((m) => !(m.method && allowExtra.includes(m.method)));
    assert.deepStrictEqual(rest, [], `${path.basename(file)}: unexpected messages after the conversation`);
  } finally {
    server.kill('SIGKILL');
  }
}

async function main() {
  const [binary, ...targets] = process.argv.slice(2);
  if (!binary || !targets.length) {
    console.error('usage: golden_replay.js GHOSTLINE_BINARY GOLDEN_DIR_OR_FILE...');
    process.exit(2);
  }
  const files = targets.flatMap((t) => fs.statSync(t).isDirectory()
    ? fs.readdirSync(t).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(t, f)) : [t]);
  let failed = 0;
  for (const f of files) {
    try {
      await replay(binary, f);
      console.log(`ok   ${path.basename(f)}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${path.basename(f)}\n${e.message}`);
    }
  }
  if (!files.length) { console.log('no golden files'); process.exit(1); }
  process.exit(failed ? 1 : 0);
}
main();
