#!/usr/bin/env node
// bench/lsp_latency: inline-completion latency as an editor sees it, through the real
// `ghostline lsp` over stdio with the model it loads (the embedded one by default).
//
// 1. Typing trace: the first --lines lines of a real source file are opened with --segments
//    stretches of code cut out (each left as one empty line); each stretch is then typed back
//    character by character at a pause of --pause-min..--pause-max ms between keys and
//    --line-pause-min..--line-pause-max ms before each Enter (Enter inserts the newline and the
//    next line's indentation at once, as an editor's auto-indent does). Per keystroke the client
//    does what VS Code does: didChange, $/cancelRequest for a still-pending inline request, and a
//    new textDocument/inlineCompletion. Latency = request sent -> answer received, at the client.
//    Requests are split by the cursor's line as the service classifies it (single-line: text
//    before the cursor not ending in ':' or '{'; multi-line: a blank line or after a block
//    opener) and by the answer's source (ghostline/completionStats); answers of source "none"
//    (comments and strings) are only counted by source.
// 2. First completion after opening the --lines-line file in a fresh server, --first-runs
//    times: with the model already loaded (wait for ghostline/status loaded, then didOpen +
//    request -> answer), and counting the load (didOpen + request right after initialize; also
//    from process start).
// Prints a summary and writes bench/results/lsp_latency-<date>[-<tag>].json.
// Usage: node bench/lsp_latency/run.js [--binary build/ghostline] [--file F] [--lines 1000]
//        [--keystrokes 1200] [--segments 6] [--seed 1] [--first-runs 5] [--tag T] [--note TEXT]
//        [--no-write] [--pause-min 50 --pause-max 150 --line-pause-min 300 --line-pause-max 900]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const { lsp, Session, settle } = require(path.join(ROOT, 'tests', 'e2e', 'lsp_client'));

function parseArgs(argv) {
  const o = {
    binary: path.join(ROOT, 'build', 'ghostline'),
    file: path.join(ROOT, 'tests', 'fixtures', 'tokenizer', 'corpus', 'code_python2.py'),
    language: '', lines: 1000, keystrokes: 1200, segments: 6, seed: 1, 'first-runs': 5,
    'pause-min': 50, 'pause-max': 150, 'line-pause-min': 300, 'line-pause-max': 900, 'segment-pause': 1500,
    tag: '', note: '', write: true, out: path.join(ROOT, 'bench', 'results'), raw: false,
  };
  for (let i = 0; i < argv.length; ++i) {
    const a = argv[i];
    if (a === '--no-write') o.write = false;
    else if (a === '--raw') o.raw = true;
    else if (a.startsWith('--') && i + 1 < argv.length && a.slice(2) in o) {
      const k = a.slice(2);
      o[k] = typeof o[k] === 'number' ? Number(argv[++i]) : argv[++i];
      if (typeof o[k] === 'number' && !Number.isFinite(o[k])) throw new Error(`${a} needs a number`);
    } else throw new Error(`unknown or incomplete argument ${a} (see the usage at the top of ${__filename})`);
  }
  if (!o.language) o.language = { '.py': 'python', '.cpp': 'cpp', '.hpp': 'cpp', '.h': 'cpp', '.ts': 'typescript', '.go': 'go', '.rs': 'rust' }[path.extname(o.file)] || 'plaintext';
  return o;
}

// Seeded PRNG (mulberry32), so a trace is the same from run to run.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}
function summary(values) {
  const s = [...values].sort((a, b) => a - b);
  const r = (x) => (x === null ? null : Math.round(x * 10) / 10);
  return { n: s.length, p50: r(percentile(s, 50)), p95: r(percentile(s, 95)), p99: r(percentile(s, 99)),
           mean: r(s.length ? s.reduce((a, b) => a + b, 0) / s.length : null), max: r(s.length ? s[s.length - 1] : null) };
}

// Per line: whether it is code (not blank, not a comment, not in or around a docstring) and
// whether a stretch to retype may begin there (a statement start outside a docstring).
function classifyLines(lines) {
  const code = [], starts = [];
  let inDoc = false;
  for (let i = 0; i < lines.length; ++i) {
    const t = lines[i].trim();
    const quotes = (lines[i].match(/"""|'''/g) || []).length;
    code.push(!inDoc && quotes === 0 && t !== '' && !t.startsWith('#') && !t.startsWith('//'));
    if (!inDoc && /^[A-Za-z_]/.test(t) && t.length > 8) starts.push(i);
    if (quotes % 2 === 1) inDoc = !inDoc;
  }
  return { code, starts };
}

// The stretches [a, b) of lines to cut out and retype, in document order: one near each of
// `count` evenly spaced points, about `budget` characters each, mostly code (at least 80% of
// their characters), since comments and docstrings get no completion.
function pickSegments(lines, count, budget) {
  const { code, starts } = classifyLines(lines);
  const stretch = (a) => {
    let b = a, chars = 0, codeChars = 0;
    while (b < lines.length && chars < budget) {
      const n = lines[b].trim().length + 1;
      chars += n;
      if (code[b++]) codeChars += n;
    }
    return { a, b, chars, code_fraction: codeChars / chars };
  };
  const segments = [];
  for (let s = 0; s < count; ++s) {
    const target = Math.floor((s * lines.length) / count);
    const end = Math.floor(((s + 1) * lines.length) / count);
    const after = segments.length ? segments[segments.length - 1].b : 0;
    const candidates = starts.filter((i) => i >= target && i < end && i > after).map(stretch);
    const pick = candidates.find((c) => c.code_fraction >= 0.8) || candidates[0];
    if (pick) segments.push(pick);
  }
  return segments;
}

// The class the service gives the cursor at the end of its line (completion/context.cpp pick_mode).
function lineClass(doc, cursor) {
  const lineStart = doc.text.lastIndexOf('\n', cursor - 1) + 1;
  const before = doc.text.slice(lineStart, cursor).trimEnd();
  return before === '' || before.endsWith(':') || before.endsWith('{') ? 'multi-line' : 'single-line';
}

function machine() {
  const cpus = os.cpus();
  let commit = 'unknown', dirty = null;
  try {
    commit = execFileSync('git', ['-C', ROOT, 'rev-parse', 'HEAD']).toString().trim();
    dirty = execFileSync('git', ['-C', ROOT, 'status', '--porcelain', '--untracked-files=no']).toString().trim() !== '';
  } catch (e) { /* not a git checkout */ }
  return { commit, tracked_changes_in_tree: dirty,
           machine: { cpu: cpus[0] ? cpus[0].model : 'unknown', cores: cpus.length, memory_gib: Math.round(os.totalmem() / 2 ** 30),
                      os: `${os.type()} ${os.release()}`, node: process.version } };
}

// CPU seconds (user + system) a process has used so far, from /proc (null elsewhere).
function cpuSeconds(pid) {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    const ticks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    return (Number(fields[11]) + Number(fields[12])) / ticks;  // utime, stime (fields 14, 15)
  } catch (e) {
    return null;
  }
}

function uptimeLine() {
  try { return execFileSync('uptime').toString().trim(); } catch (e) { return `loadavg ${os.loadavg().join(' ')}`; }
}

// ---- 1. the typing trace ----

async function typingTrace(o, baseLines) {
  const random = rng(o.seed);
  const between = (lo, hi) => lo + random() * (hi - lo);
  const segments = pickSegments(baseLines, o.segments, o.keystrokes / o.segments);
  // The opened text: every segment replaced by one empty line.
  const opened = [];
  for (let i = 0, s = 0; i < baseLines.length;) {
    if (s < segments.length && i === segments[s].a) {
      opened.push('');
      i = segments[s++].b;
    } else opened.push(baseLines[i++]);
  }
  const session = new Session(o.binary);
  await session.initialize();
  const loaded = await session.statusWhen((st) => st.loaded || st.loadError !== '', 120000);
  if (!loaded.loaded) throw new Error(`the model did not load: ${loaded.loadError}`);
  const doc = session.open('file:///bench/lsp_latency/' + path.basename(o.file), o.language, opened.join('\n') + '\n');
  await session.diagnosticsFor(doc.uri, 1);
  await sleep(500);
  const before = await session.status();
  const records = [];
  let pending = null;  // the cancellation source of the newest request, while it is unanswered

  const keystroke = (start, end, text, kind) => {
    doc.edit(start, end, text);
    const cursor = start + text.length;
    if (pending) pending.cancel();  // VS Code cancels the inline request it no longer needs
    const source = new lsp.CancellationTokenSource();
    const rec = { i: records.length, kind, cls: lineClass(doc, cursor), t0: performance.now() };
    const { id, promise } = doc.inline(cursor, { token: source.token });
    rec.id = id;
    pending = source;
    rec.done = settle(promise, `keystroke ${rec.i}`).then((out) => {
      rec.t1 = performance.now();
      rec.ms = rec.t1 - rec.t0;
      rec.cancelled = !!out.cancelled;
      if (out.result) rec.items = out.result.items.length;
      if (pending === source) pending = null;
    });
    records.push(rec);
    return cursor;
  };

  const t0 = performance.now();
  const cpuBefore = cpuSeconds(session.proc.pid);
  for (const seg of segments) {
    let cursor = doc.offset({ line: seg.a, character: 0 });
    for (let i = seg.a; i < seg.b; ++i) {
      const line = baseLines[i];
      const indent = line.match(/^[ \t]*/)[0];
      if (i === seg.a) {
        if (indent) cursor = keystroke(cursor, cursor, indent, 'indent');
      } else {
        await sleep(between(o['line-pause-min'], o['line-pause-max']));
        cursor = keystroke(cursor, cursor, '\n' + indent, 'enter');
      }
      for (const ch of line.slice(indent.length)) {
        await sleep(between(o['pause-min'], o['pause-max']));
        cursor = keystroke(cursor, cursor, ch, 'char');
      }
    }
    await sleep(o['segment-pause']);
  }
  await Promise.all(records.map((r) => r.done));
  const wallS = (performance.now() - t0) / 1000;
  const cpuAfter = cpuSeconds(session.proc.pid);
  const serverCpuS = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
  if (doc.text !== baseLines.join('\n') + '\n') throw new Error('the trace did not restore the file (a bug in the benchmark)');
  for (const r of records) if (!r.cancelled) Object.assign(r, { stats: await session.statsFor(r.id) });
  const after = await session.status();
  const alive = session.alive();
  const exit = await session.close();

  const answered = records.filter((r) => !r.cancelled);
  const cancelled = records.filter((r) => r.cancelled);
  const bySource = {};
  for (const r of answered) (bySource[r.stats.source] = bySource[r.stats.source] || []).push(r);
  const completing = answered.filter((r) => r.stats.source !== 'none');
  const latency = {};
  for (const cls of ['single-line', 'multi-line']) {
    const rs = completing.filter((r) => r.cls === cls);
    latency[cls] = summary(rs.map((r) => r.ms));
    latency[cls].server_total_ms = summary(rs.map((r) => r.stats.totalMs));
    latency[cls].by_source = {};
    for (const src of [...new Set(rs.map((r) => r.stats.source))].sort())
      latency[cls].by_source[src] = summary(rs.filter((r) => r.stats.source === src).map((r) => r.ms));
    // Cancelled requests never answered: their pending time is a lower bound of their latency.
    const lost = cancelled.filter((r) => r.cls === cls);
    latency[cls].cancelled = lost.length;
    latency[cls].with_cancelled_as_lower_bounds = summary([...rs, ...lost].map((r) => r.ms));
  }
  const sourceSummary = {};
  for (const [src, rs] of Object.entries(bySource)) {
    sourceSummary[src] = summary(rs.map((r) => r.ms));
    sourceSummary[src].server_total_ms = summary(rs.map((r) => r.stats.totalMs));
    if (src !== 'typing-through') {
      // Where the time went (completionStats): the client's round trip outside the service
      // (transport, JSON, the server's reader thread: didChange reparse), waiting for the
      // worker or the model, context + prompt + tokenization, then (engine answers) the engine's
      // wait + prefill + first token, and the rest of the decode + post-processing.
      const b = (f) => summary(rs.map(f));
      sourceSummary[src].breakdown_ms = {
        outside_service: b((r) => r.ms - r.stats.totalMs), queue: b((r) => r.stats.queueMs), context: b((r) => r.stats.contextMs),
        ...(src.startsWith('engine') && src !== 'engine-first-line'
          ? { engine_to_first_token: b((r) => r.stats.ttftMs - r.stats.queueMs - r.stats.contextMs), decode_and_rest: b((r) => r.stats.totalMs - r.stats.ttftMs) }
          : {}),
      };
    }
    if (src.startsWith('engine')) {
      sourceSummary[src].server_ttft_ms = summary(rs.map((r) => r.stats.ttftMs));
      sourceSummary[src].prompt_tokens = summary(rs.map((r) => r.stats.promptTokens));
      sourceSummary[src].computed_prompt_tokens = summary(rs.map((r) => r.stats.promptTokens - r.stats.cachedTokens));
      sourceSummary[src].generated_tokens = summary(rs.map((r) => r.stats.generatedTokens));
    }
  }
  const count = (src) => (bySource[src] || []).length;
  const prompt = after.promptTokens - before.promptTokens;
  const cached = after.cachedTokens - before.cachedTokens;
  return {
    trace: { file: path.relative(ROOT, o.file), language: o.language, lines: baseLines.length,
             segments: segments.map((s) => ({ first_line: s.a + 1, lines: s.b - s.a, chars: s.chars, code_fraction: Math.round(s.code_fraction * 100) / 100 })),
             keystrokes: records.length, wall_s: Math.round(wallS * 10) / 10,
             server_cpu_s: serverCpuS === null ? null : Math.round(serverCpuS * 10) / 10,
             server_cpu_fraction_of_one_core: serverCpuS === null ? null : Math.round((serverCpuS / wallS) * 1000) / 1000,
             pauses_ms: { key: [o['pause-min'], o['pause-max']], line_end: [o['line-pause-min'], o['line-pause-max']] } },
    requests: records.length, answered: answered.length, cancelled: cancelled.length,
    classes: { 'single-line': records.filter((r) => r.cls === 'single-line').length, 'multi-line': records.filter((r) => r.cls === 'multi-line').length },
    latency_ms: latency,
    by_source: sourceSummary,
    answers_by_source: Object.fromEntries(Object.entries(bySource).map(([k, v]) => [k, v.length])),
    hit_rates: {
      cache_of_answered: answered.length ? count('cache') / answered.length : null,
      typing_through_of_answered: answered.length ? count('typing-through') / answered.length : null,
      cache_of_requests: count('cache') / records.length,
      typing_through_of_requests: count('typing-through') / records.length,
    },
    prompt_tokens: { total: prompt, reused_from_kv_cache: cached, computed: prompt - cached, reused_fraction: prompt ? cached / prompt : null,
                     note: 'over engine answers that completed (ghostline/status); cancelled engine work is not counted' },
    service_status_delta: { answers: Object.fromEntries(Object.keys(after.answers).map((k) => [k, after.answers[k] - (before.answers[k] || 0)])),
                            cancelled: after.cancelled - before.cancelled, failed: after.failed - before.failed },
    model: { name: after.modelName, device: after.device, kv_capacity_tokens: after.kvCapacityTokens },
    server_alive_at_end: alive, exit_code: exit.code,
    raw: o.raw ? records.map((r) => ({ i: r.i, kind: r.kind, cls: r.cls, ms: Math.round(r.ms * 10) / 10, cancelled: r.cancelled,
                                       source: r.stats && r.stats.source, server_ms: r.stats && r.stats.totalMs,
                                       queue_ms: r.stats && r.stats.queueMs, context_ms: r.stats && r.stats.contextMs, ttft_ms: r.stats && r.stats.ttftMs,
                                       prompt: r.stats && r.stats.promptTokens, cached: r.stats && r.stats.cachedTokens })) : undefined,
  };
}

// ---- 2. the first completion after opening the file ----

function firstCursorText(baseLines, random) {
  const { code, starts } = classifyLines(baseLines);
  const candidates = starts.filter((i) => code[i] && i >= baseLines.length * 0.4 && baseLines[i].trim().length > 16);
  const i = candidates[Math.floor(random() * candidates.length)];
  const line = baseLines[i];
  const mid = Math.floor(line.length / 2);
  let cut = line.lastIndexOf(' ', mid);
  if (cut <= line.search(/\S/)) cut = mid;
  const lines = [...baseLines];
  lines[i] = line.slice(0, cut);
  return { text: lines.join('\n') + '\n', line: i, character: cut };
}

async function firstCompletion(o, baseLines, run, random, waitForLoad) {
  const { text, line, character } = firstCursorText(baseLines, random);
  const session = new Session(o.binary);
  try {
    await session.initialize();
    if (waitForLoad) {
      const st = await session.statusWhen((s) => s.loaded || s.loadError !== '', 120000);
      if (!st.loaded) throw new Error(`the model did not load: ${st.loadError}`);
    }
    const t0 = performance.now();
    const doc = session.open(`file:///bench/lsp_latency/first-${run}-${path.basename(o.file)}`, o.language, text);
    const { id, promise } = doc.inline(doc.offset({ line, character }));
    const { result, cancelled } = await settle(promise, 'first completion');
    const t1 = performance.now();
    if (cancelled) throw new Error('the first completion was cancelled');
    const stats = await session.statsFor(id);
    const loadLog = session.logs.map((l) => /loaded on \S+ in (\d+) ms/.exec(l)).find((m) => m);
    await session.close();
    return { cursor: { line: line + 1, character }, from_open_ms: t1 - t0, from_spawn_ms: t1 - session.spawnedAt,
             source: stats.source, server_total_ms: stats.totalMs, server_ttft_ms: stats.ttftMs, prompt_tokens: stats.promptTokens,
             cached_tokens: stats.cachedTokens, generated_tokens: stats.generatedTokens, items: result.items.length,
             model_load_ms: loadLog ? Number(loadLog[1]) : null };
  } finally {
    session.kill();
  }
}

async function firstCompletions(o, baseLines) {
  const loaded = [], withLoad = [];
  for (let run = 0; run < o['first-runs']; ++run) {
    withLoad.push(await firstCompletion(o, baseLines, `cold${run}`, rng(o.seed + run), false));
    loaded.push(await firstCompletion(o, baseLines, `warm${run}`, rng(o.seed + run), true));
  }
  return {
    model_loaded: { from_open_ms: summary(loaded.map((r) => r.from_open_ms)), runs: loaded },
    counting_load: { from_open_ms: summary(withLoad.map((r) => r.from_open_ms)), from_spawn_ms: summary(withLoad.map((r) => r.from_spawn_ms)),
                     model_load_ms: summary(withLoad.map((r) => r.model_load_ms).filter((x) => x !== null)), runs: withLoad },
  };
}

function printSummary(r) {
  const f = (s) => (s && s.n ? `p50 ${s.p50} / p95 ${s.p95} / p99 ${s.p99} ms (n=${s.n})` : 'no samples');
  const t = r.typing;
  console.log(`\nlsp_latency ${r.date} ${r.commit.slice(0, 10)} — ${r.machine.cpu} (${r.machine.cores} cores)`);
  console.log(`load: before ${r.load.before}; after ${r.load.after}`);
  console.log(`trace: ${t.trace.file} (${t.trace.lines} lines; retyped from lines ${t.trace.segments.map((s) => s.first_line).join(', ')}), ${t.requests} keystrokes in ${t.trace.wall_s} s; ` +
              `answered ${t.answered}, cancelled ${t.cancelled}`);
  for (const cls of ['single-line', 'multi-line']) {
    const l = t.latency_ms[cls];
    console.log(`  ${cls.padEnd(12)} ${f(l)}; server ${f(l.server_total_ms)}; cancelled ${l.cancelled}`);
    for (const [src, s] of Object.entries(l.by_source)) console.log(`      ${src.padEnd(18)} ${f(s)}`);
  }
  console.log(`  server CPU over the trace: ${t.trace.server_cpu_s} s in ${t.trace.wall_s} s (${(100 * t.trace.server_cpu_fraction_of_one_core).toFixed(1)}% of one core)`);
  console.log(`  answers by source: ${JSON.stringify(t.answers_by_source)}`);
  for (const [src, s] of Object.entries(t.by_source)) {
    if (!s.breakdown_ms) continue;
    const parts = Object.entries(s.breakdown_ms).map(([k, v]) => `${k} ${v.p50}/${v.p95}`).join(', ');
    console.log(`  ${src} time, p50/p95 ms: ${parts}`);
  }
  console.log(`  hit rates (of answered): cache ${(100 * t.hit_rates.cache_of_answered).toFixed(1)}%, typing-through ${(100 * t.hit_rates.typing_through_of_answered).toFixed(1)}%`);
  console.log(`  prompt tokens: ${t.prompt_tokens.total} total, ${t.prompt_tokens.reused_from_kv_cache} reused (${(100 * t.prompt_tokens.reused_fraction).toFixed(1)}%), ${t.prompt_tokens.computed} computed`);
  const fc = r.first_completion;
  console.log(`first completion, ${r.settings.lines}-line file: model loaded ${f(fc.model_loaded.from_open_ms)}; ` +
              `counting the load: from didOpen ${f(fc.counting_load.from_open_ms)}, from process start ${f(fc.counting_load.from_spawn_ms)}`);
  console.log(`goals: ${JSON.stringify(r.goals)}`);
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(o.binary)) throw new Error(`no binary at ${o.binary} (build it, or pass --binary)`);
  const baseLines = fs.readFileSync(o.file, 'utf8').split('\n').slice(0, o.lines);
  const started = uptimeLine();
  const loadBefore = os.loadavg();
  const typing = await typingTrace(o, baseLines);
  const first = await firstCompletions(o, baseLines);
  const single = typing.latency_ms['single-line'];
  const result = {
    benchmark: 'lsp_latency', date: new Date().toISOString().slice(0, 10), ...machine(),
    load: { before: started, after: uptimeLine(), loadavg_1m_before: loadBefore[0], loadavg_1m_after: os.loadavg()[0] },
    note: o.note, command: `node bench/lsp_latency/run.js ${process.argv.slice(2).join(' ')}`.trim(),
    // `commit` is the checkout's HEAD when the run began; the binary may be older (its build time).
    binary_built: fs.statSync(o.binary).mtime.toISOString(),
    settings: { binary: path.relative(ROOT, o.binary), lines: o.lines, keystrokes: o.keystrokes, segments: o.segments, seed: o.seed, first_runs: o['first-runs'] },
    typing, first_completion: first,
    goals: {
      single_line_p50_le_50ms: single.n ? single.p50 <= 50 : null,
      single_line_p95_le_150ms: single.n ? single.p95 <= 150 : null,
      first_completion_model_loaded_p50_le_1s: first.model_loaded.from_open_ms.n ? first.model_loaded.from_open_ms.p50 <= 1000 : null,
      first_completion_model_loaded_max_le_1s: first.model_loaded.from_open_ms.n ? first.model_loaded.from_open_ms.max <= 1000 : null,
      first_completion_counting_load_max_le_1s: first.counting_load.from_open_ms.n ? first.counting_load.from_open_ms.max <= 1000 : null,
    },
  };
  printSummary(result);
  if (o.write) {
    fs.mkdirSync(o.out, { recursive: true });
    const file = path.join(o.out, `lsp_latency-${result.date}${o.tag ? '-' + o.tag : ''}.json`);
    fs.writeFileSync(file, JSON.stringify(result, null, 1) + '\n');
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
  // Exit non-zero when the server misbehaved (not when a latency goal is missed: that is a number).
  if (!typing.server_alive_at_end || typing.exit_code !== 0) process.exit(1);
}

main().catch((e) => {
  console.error(`lsp_latency: ${e.stack || e}`);
  process.exit(1);
});
