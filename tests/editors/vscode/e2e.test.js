// End-to-end test of the VS Code extension in real VS Code: code-server (VS Code for the browser,
// from npm) with the packaged .vsix installed, in Debian's Chromium driven by playwright-core,
// talking to the real `ghostline lsp` with the embedded model. It opens a Python file, types,
// waits for the server's ghost text, accepts the next words and the rest of the line (our
// commands, Ctrl+Right and Ctrl+Down), saves and checks the file on disk; checks the status bar
// (model, device, latency), toggling, the log, that a syntax error offers "Fix with Ghostline"
// quick fixes, and applies one: a file from the quick-fix corpus with a missing colon, the fix
// picked in the light-bulb menu (Ctrl+.), and the editor's text must become the file with exactly
// the edit the server sent (read from the language client's own JSON trace of codeAction/resolve,
// in the Ghostline log at trace level) applied, the error gone.
//
//   node e2e.test.js --binary build/ghostline --vsix ghostline.vsix --out DIR
// Exit 77 (skip) only when Chromium is missing. Writes DIR/vscode-ghost-text.png (DIR/failure.png
// when it fails); with GHOSTLINE_UPDATE_SCREENSHOT=1 also editors/vscode/media/ghost-text.png (the
// README's). GHOSTLINE_KEEP_E2E=1 keeps the temporary VS Code profile and workspace.
"use strict";
const { spawn, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const chromium = process.env.GHOSTLINE_CHROMIUM || "/usr/bin/chromium";
if (!fs.existsSync(chromium)) {
  console.log(`SKIP: Chromium not found at ${chromium} (Debian package chromium; tools/setup.sh installs it)`);
  process.exit(77);
}
for (const key of ["binary", "vsix", "out"]) if (!args[key]) fail(`missing --${key}`);
const codeServer = path.join(__dirname, "node_modules", "code-server", "out", "node", "entry.js");
if (!fs.existsSync(codeServer) || !fs.existsSync(path.join(__dirname, "node_modules", "playwright-core")))
  fail(`code-server or playwright-core is not installed in ${__dirname} (run tools/setup.sh)`);
if (!fs.existsSync(args.vsix)) fail(`no extension package at ${args.vsix}`);
const { chromium: playwright } = require("playwright-core");

const outDir = path.resolve(args.out);
fs.mkdirSync(outDir, { recursive: true });
const root = fs.mkdtempSync(path.join(os.tmpdir(), "ghostline-vscode-e2e-"));
const dirs = { ext: path.join(root, "ext"), data: path.join(root, "data"), config: path.join(root, "config"), ws: path.join(root, "ws") };
for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true });
const env = { ...process.env, XDG_CONFIG_HOME: dirs.config, XDG_DATA_HOME: path.join(root, "xdg-data") };

function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}
function check(ok, message) {
  if (!ok) throw new Error(message);
}

// ---- the workspace, the settings, the extension ----

const pyFile = path.join(dirs.ws, "stats.py");
const pySource = [
  "import math", "", "", "def mean(values):", "    return sum(values) / len(values)", "", "",
  "def variance(values):", "    m = mean(values)", "    return sum((v - m) ** 2 for v in values) / len(values)", "", "",
  "def std(values):", "",
].join("\n");
fs.writeFileSync(pyFile, pySource);
// For the quick fix: the corpus's missing-colon case (the embedded model fixes it with greedy
// decoding; bench/quickfix).
const fixFile = path.join(dirs.ws, "circle.py");
const fixSource = fs.readFileSync(path.join(__dirname, "..", "..", "fixtures", "fixes", "py_missing_colon_1.py"), "utf8");
fs.writeFileSync(fixFile, fixSource);
fs.mkdirSync(path.join(dirs.data, "User"), { recursive: true });
fs.writeFileSync(path.join(dirs.data, "User", "settings.json"), JSON.stringify({
  "ghostline.binary": path.resolve(args.binary),
  "workbench.startupEditor": "none",
  "workbench.tips.enabled": false,
  "workbench.colorTheme": "Default Dark Modern",
  "security.workspace.trust.enabled": false,
  "telemetry.telemetryLevel": "off",
  "extensions.autoCheckUpdates": false,
  "extensions.autoUpdate": false,
  "update.mode": "none",
  "files.hotExit": "off",
  "window.commandCenter": false,
  "editor.minimap.enabled": false,
  "editor.inlineSuggest.enabled": true,
  // Only the ghost text: no brackets closed for us, no word-based suggestion widget.
  "editor.autoClosingBrackets": "never",
  "editor.autoClosingQuotes": "never",
  "editor.quickSuggestions": { other: false, comments: false, strings: false },
  "editor.suggestOnTriggerCharacters": false,
  "editor.wordBasedSuggestions": "off",
  // The language client traces every message as one JSON line into the Ghostline log (which the
  // page URL puts at trace level): how the test learns the edit a quick fix carries.
  "ghostline.trace.server": { verbosity: "verbose", format: "json" },
}, null, 2));

const install = spawnSync(process.execPath, [codeServer, "--extensions-dir", dirs.ext, "--user-data-dir", dirs.data, "--install-extension", path.resolve(args.vsix)], { env, encoding: "utf8" });
if (install.status !== 0 || !/successfully installed/.test(install.stdout)) fail(`installing the extension failed:\n${install.stdout}\n${install.stderr}`);

// ---- code-server ----

let serverLog = "";
const server = spawn(process.execPath, [codeServer, "--auth", "none", "--bind-addr", "127.0.0.1:0", "--extensions-dir", dirs.ext,
  "--user-data-dir", dirs.data, "--disable-telemetry", "--disable-update-check", "--disable-workspace-trust",
  "--disable-getting-started-override", dirs.ws], { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
const port = new Promise((resolve, reject) => {
  const onData = (chunk) => {
    serverLog += chunk;
    const m = /HTTP server listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(serverLog);
    if (m) resolve(Number(m[1]));
  };
  server.stdout.on("data", onData);
  server.stderr.on("data", onData);
  server.on("exit", (code) => reject(new Error(`code-server exited (${code}):\n${serverLog}`)));
  setTimeout(() => reject(new Error(`code-server did not start in 60 s:\n${serverLog}`)), 60000);
});

// ---- helpers ----

const t0 = Date.now();
function log(message) {
  console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${message}`);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(100);
  }
}

// The editor's lines in order (by their position), without ghost text.
async function documentLines(page) {
  return page.evaluate(() => {
    const editor = document.querySelector(".editor-instance .monaco-editor");
    const lines = [...editor.querySelectorAll(".view-lines .view-line")].map((el) => {
      const copy = el.cloneNode(true);
      copy.querySelectorAll("[class*='ghost-text']").forEach((g) => g.remove());
      return { top: parseFloat(el.style.top), text: copy.textContent.replace(/\u00a0/g, " ") };
    });
    return lines.sort((a, b) => a.top - b.top).map((l) => l.text);
  });
}

// The ghost text shown: the part on the cursor's line, then any lines below it.
async function ghostText(page) {
  return page.evaluate(() => {
    const editor = document.querySelector(".editor-instance .monaco-editor");
    const inline = [...editor.querySelectorAll(".view-line [class*='ghost-text-decoration']")].map((e) => e.textContent).join("");
    const below = [...editor.querySelectorAll(".ghost-text .view-line, .ghost-text-view-zone .view-line")]
      .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top)).map((e) => e.textContent);
    return [inline, ...below].join("\n").replace(/\u00a0/g, " ");
  });
}

// Waits until the ghost text is non-empty and the same for `stableMs` (answers settle).
async function settledGhostText(page, timeoutMs) {
  let previous = "";
  let since = Date.now();
  return waitFor("ghost text from the server", async () => {
    const now = await ghostText(page);
    if (now !== previous) {
      previous = now;
      since = Date.now();
    }
    return now.trim().length > 0 && Date.now() - since >= 700 ? now : null;
  }, timeoutMs);
}

async function statusText(page) {
  const item = page.locator('[id="ghostline.ghostline.status"]');
  return (await item.count()) ? (await item.innerText()).trim() : "";
}

async function command(page, title) {
  await page.keyboard.press("F1");
  await page.waitForSelector(".quick-input-widget input", { state: "visible" });
  await page.keyboard.type(title);
  await page.waitForSelector(`.quick-input-list .monaco-list-row[aria-label*="${title}"]`, { timeout: 10000 });
  await page.keyboard.press("Enter");
}

function savedLines() {
  return fs.readFileSync(pyFile, "utf8").split("\n");
}

async function save(page, file = pyFile) {
  const before = fs.statSync(file).mtimeMs;
  await page.keyboard.press("Control+S");
  await waitFor("the file to be saved", () => fs.statSync(file).mtimeMs !== before, 10000);
}

// Opens a workspace file through Quick Open and waits until the editor shows `line`.
async function openFile(page, name, line) {
  await page.keyboard.press("Control+P");
  await page.waitForSelector(".quick-input-widget input", { state: "visible" });
  await page.keyboard.type(name);
  await page.waitForSelector(`.quick-input-list .monaco-list-row[aria-label*="${name}"]`, { timeout: 15000 });
  await page.keyboard.press("Enter");
  await waitFor(`${name} in the editor`, async () => (await documentLines(page).catch(() => [])).includes(line), 20000);
}

// The language client's JSON trace (vscode-languageclient, "ghostline.trace.server" format json):
// the messages it logged to the Ghostline channel, in order, as { type, message }.
function clientTrace() {
  const messages = [];
  for (const f of listFiles(path.join(dirs.data, "logs")).filter((f) => /Ghostline\.log$/.test(f))) {
    for (const line of fs.readFileSync(f, "utf8").split("\n")) {
      const at = line.indexOf('{"isLSPMessage"');
      if (at < 0) continue;
      try {
        messages.push(JSON.parse(line.slice(at)));
      } catch {
        // a line cut by a write in progress
      }
    }
  }
  return messages;
}

// The result of the last request of `method` that has been answered, from the trace.
function lastResult(method) {
  const trace = clientTrace();
  const sent = trace.filter((m) => m.type === "send-request" && m.message.method === method).map((m) => m.message.id);
  for (const id of sent.reverse()) {
    const reply = trace.find((m) => m.type === "receive-response" && m.message.id === id);
    if (reply) return reply.message;
  }
  return null;
}

// LSP text edits (UTF-16 positions, as JavaScript strings count) applied to text.
function applyEdits(text, edits) {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === "\n") starts.push(i + 1);
  const offset = (p) => Math.min(starts[p.line] ?? text.length, text.length) + p.character;
  const sorted = [...edits].sort((a, b) => offset(b.range.start) - offset(a.range.start));
  for (const e of sorted) text = text.slice(0, offset(e.range.start)) + e.newText + text.slice(offset(e.range.end));
  return text;
}

// ---- the test ----

async function main() {
  const browser = await playwright.launch({ executablePath: chromium, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  const page = await browser.newPage({ viewport: { width: 960, height: 480 } });
  try {
    await run(page);
  } catch (error) {
    await page.screenshot({ path: path.join(outDir, "failure.png") }).catch(() => undefined);
    console.error(`status bar: ${await statusText(page).catch(() => "?")}`);
    console.error(`ghost text: ${JSON.stringify(await ghostText(page).catch(() => "?"))}`);
    console.error(`code-server log (tail):\n${serverLog.split("\n").slice(-30).join("\n")}`);
    const logs = path.join(dirs.data, "logs");
    for (const f of listFiles(logs).filter((f) => /Ghostline/.test(f))) console.error(`---- ${f}\n${fs.readFileSync(f, "utf8").slice(-4000)}`);
    throw error;
  } finally {
    await browser.close();
  }
}

function listFiles(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listFiles(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

async function run(page) {
  // payload logLevel: the Ghostline log channel at trace level (VS Code's --log EXTENSION:LEVEL).
  const payload = JSON.stringify([["logLevel", "ghostline.ghostline:trace"]]);
  const url = `http://127.0.0.1:${await port}/?folder=${encodeURIComponent(dirs.ws)}&payload=${encodeURIComponent(payload)}`;
  log(`code-server at ${url}`);
  await page.goto(url);
  await page.waitForSelector(".monaco-workbench", { timeout: 60000 });
  const started = await waitFor("the Ghostline status-bar item", async () => { const s = await statusText(page); return /Ghostline/.test(s) && s; }, 60000);
  log(`workbench up; status bar: ${JSON.stringify(started)}`);

  await openFile(page, "stats.py", "def std(values):");
  log("stats.py open");

  // Type the body of std() and wait for the server's suggestion (the first one loads the model).
  await page.keyboard.press("Control+End");
  const typed = "    return ";
  await page.keyboard.type(typed, { delay: 40 });
  const ghost = await settledGhostText(page, 60000);
  log(`ghost text: ${JSON.stringify(ghost)}`);
  if (ghost.includes("\n")) log("(a multi-line suggestion)");

  // The status bar names the model and the device and times the last completion.
  const status = await waitFor("model, device and latency in the status bar",
    async () => { const s = await statusText(page); return /Ghostline · [\w.-]+ · (cpu|cuda\S*) · [\d.]+ ms/.test(s) && s; }, 20000);
  log(`status bar: ${JSON.stringify(status)}`);
  // Its tooltip adds the server's own numbers (ghostline/status, ghostline/completionStats).
  await page.hover('[id="ghostline.ghostline.status"]');
  const tooltip = await waitFor("the status-bar tooltip", async () => {
    const t = await page.evaluate(() => [...document.querySelectorAll(".workbench-hover, .monaco-hover")].map((e) => e.innerText).join("\n"));
    return /^Model: [\w.-]+ \(loaded in [\d.]+ ms\)$/m.test(t) && /^Device: (cpu|cuda)/m.test(t) &&
      /^Server: [\d.]+ ms \((engine|engine-first-line|cache|typing-through)\b/m.test(t) && t;
  }, 10000);
  log(`tooltip: ${JSON.stringify(tooltip)}`);

  await page.screenshot({ path: path.join(outDir, "vscode-ghost-text.png") });
  if (process.env.GHOSTLINE_UPDATE_SCREENSHOT === "1") {
    const target = path.join(__dirname, "..", "..", "..", "editors", "vscode", "media", "ghost-text.png");
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.copyFileSync(path.join(outDir, "vscode-ghost-text.png"), target);
    log(`screenshot written to ${target}`);
  }

  // Accept word by word (Ctrl+Right: ghostline.acceptNextWord), then the rest of the line (Ctrl+Down:
  // ghostline.acceptNextLine; VS Code binds no key to its own), then anything left with Tab; save
  // after each step and read the file.
  const lastLine = pySource.split("\n").length - 1;  // 0-based index of the line we type on
  const nextWord = (text) => /^\s*(?:[\p{L}\p{N}_$]+|[^\s\p{L}\p{N}_$]+)/u.exec(text)[0];
  const wordCount = (text) => { let n = 0; for (let t = text; t.trim(); t = t.slice(nextWord(t).length)) n++; return n; };
  let accepted = typed;
  let shown = ghost;
  const words = Math.min(2, wordCount(shown) - 1);
  if (words === 0) log(`note: the suggestion ${JSON.stringify(shown)} is one word; accept-next-word is not exercised`);
  for (let i = 0; i < words; i++) {
    const word = nextWord(shown);
    await page.keyboard.press("Control+ArrowRight");
    await waitFor(`${JSON.stringify(accepted + word)} in the document`, async () => (await documentLines(page))[lastLine] === accepted + word, 10000);
    accepted += word;
    await save(page);
    check(savedLines()[lastLine] === accepted, `after accepting the next word the line is ${JSON.stringify(savedLines()[lastLine])}, expected ${JSON.stringify(accepted)}`);
    log(`accepted the next word: ${JSON.stringify(word)}`);
    shown = await settledGhostText(page, 20000);  // the rest stays suggested
  }
  const firstLine = shown.split("\n")[0];
  await page.keyboard.press("Control+ArrowDown");
  await waitFor("the rest of the line in the document", async () => (await documentLines(page))[lastLine] === accepted + firstLine, 10000);
  log(`accepted the rest of the line: ${JSON.stringify(firstLine)}`);
  accepted += firstLine;
  shown = shown.slice(firstLine.length);
  if (shown.trim()) {
    shown = await settledGhostText(page, 20000);
    await page.keyboard.press("Tab");
    log(`accepted the rest with Tab: ${JSON.stringify(shown)}`);
  }
  const expected = (accepted + shown).split("\n");
  await waitFor("the whole suggestion in the document", async () => (await documentLines(page))[lastLine] === expected[0], 10000);
  await save(page);
  const after = savedLines().slice(lastLine, lastLine + expected.length);
  check(JSON.stringify(after) === JSON.stringify(expected), `the file has ${JSON.stringify(after)}, expected ${JSON.stringify(expected)}`);

  // A syntax error: the server's diagnostic, and its "Fix with Ghostline" quick fix.
  await page.keyboard.press("Escape");
  await page.keyboard.press("Control+End");
  await page.keyboard.press("Enter");
  await page.keyboard.press("Home");
  await page.keyboard.type("total = (1 +", { delay: 20 });
  await page.keyboard.press("Escape");
  await page.waitForSelector(".editor-instance .squiggly-error", { timeout: 20000 });
  await page.keyboard.press("Control+.");
  const fix = await page.waitForSelector('.action-widget .monaco-list-row:has-text("Fix with Ghostline")', { timeout: 20000 });
  log(`quick fix offered: ${JSON.stringify((await fix.innerText()).trim())}`);
  await page.keyboard.press("Escape");

  // Apply a quick fix: circle.py lacks the colon after `def circle_area(radius)` (line 4).
  const fixLines = fixSource.split("\n");
  const errorLine = fixLines.findIndex((l) => l.startsWith("def circle_area(radius)"));
  check(errorLine >= 0 && !fixLines[errorLine].endsWith(":"), "the corpus file still has its missing colon");
  await openFile(page, "circle.py", fixLines[errorLine]);
  await page.waitForSelector(".editor-instance .squiggly-error", { timeout: 20000 });
  await page.keyboard.press("Control+G");  // go to the line of the error
  await page.waitForSelector(".quick-input-widget input", { state: "visible" });
  await page.keyboard.type(String(errorLine + 1));
  await page.keyboard.press("Enter");
  await page.keyboard.press("End");
  await page.keyboard.press("Control+.");
  const row = await page.waitForSelector('.action-widget .monaco-list-row:has-text("Fix with Ghostline")', { timeout: 20000 });
  const title = (await row.innerText()).trim();
  // Keyboard, as a person would: move the focus to our row, Enter. VS Code then asks the server to
  // resolve the action (the model writes the fix) and applies its edit.
  const focused = '.action-widget .monaco-list-row.focused:has-text("Fix with Ghostline")';
  for (let i = 0; i < 10 && !(await page.locator(focused).count()); i++) await page.keyboard.press("ArrowDown");
  check(await page.locator(focused).count(), "the Ghostline quick fix could not be focused in the menu");
  await page.keyboard.press("Enter");
  log(`quick fix picked: ${JSON.stringify(title)}`);
  const changed = await waitFor("the quick fix's edit in the editor", async () => {
    const now = await documentLines(page);
    return now.join("\n") !== fixLines.slice(0, now.length).join("\n") && now;
  }, 30000);
  const resolved = await waitFor("codeAction/resolve's reply in the client's trace", async () => lastResult("codeAction/resolve"), 10000);
  check(!resolved.error, `codeAction/resolve failed: ${JSON.stringify(resolved.error)}`);
  const action = resolved.result;
  check(action && action.title === title, `the resolved action is ${JSON.stringify(action && action.title)}, the menu showed ${JSON.stringify(title)}`);
  const uri = Object.keys(action.edit?.changes ?? {})[0];
  check(uri && decodeURIComponent(new URL(uri).pathname) === fixFile, `the fix edits ${uri}, expected ${fixFile}`);
  const edits = action.edit.changes[uri];
  log(`the server's edit: ${JSON.stringify(edits)}`);
  const fixed = applyEdits(fixSource, edits);
  check(fixed !== fixSource, "the fix changes the text");
  const fixedLines = fixed.split("\n");
  await waitFor(`the editor to read the file with the server's edit applied: ${JSON.stringify(fixedLines)}, got ${JSON.stringify(changed)}`,
    async () => JSON.stringify(await documentLines(page)) === JSON.stringify(fixedLines), 10000);
  await save(page, fixFile);
  check(fs.readFileSync(fixFile, "utf8") === fixed, `circle.py on disk: ${JSON.stringify(fs.readFileSync(fixFile, "utf8"))}, expected ${JSON.stringify(fixed)}`);
  await waitFor("the syntax error to be gone", async () => (await page.locator(".editor-instance .squiggly-error").count()) === 0, 20000);
  const corpusFixed = fs.readFileSync(path.join(__dirname, "..", "..", "fixtures", "fixes", "py_missing_colon_1.fixed.py"), "utf8");
  log(`quick fix applied: line ${errorLine + 1} now ${JSON.stringify(fixedLines[errorLine])}; ` +
      `${fixed === corpusFixed ? "the same as" : "differs from"} the corpus's fixed file`);

  // Toggle completions off and on: the status bar follows.
  await command(page, "Ghostline: Toggle Completions");
  await waitFor("the status bar to show completions off", async () => !/ · /.test(await statusText(page)), 10000);
  await command(page, "Ghostline: Toggle Completions");
  await waitFor("the status bar to show completions on", async () => / · /.test(await statusText(page)), 10000);
  log("toggled off and on");

  // The log shows the server's own lines.
  // The log shows the server's own lines. The client's trace (see the settings) fills it, and the
  // view shows its end: find the model-load line with the log view's find widget.
  await command(page, "Ghostline: Show Log");
  const logView = ".part.panel .monaco-editor";
  await page.waitForSelector(logView, { timeout: 10000 });
  await page.locator(logView).first().click();
  await page.keyboard.press("Control+F");
  await page.waitForSelector(".part.panel .find-widget.visible", { timeout: 10000 });
  await page.keyboard.type("loaded on");
  await page.keyboard.press("Enter");
  await waitFor("the server's model-load line in the Ghostline log", async () =>
    page.evaluate((v) => /loaded\son/.test(document.querySelector(`${v} .view-lines`)?.textContent ?? ""), logView), 15000);
  log("log shows the server's lines");
}

// code-server, its extension host, file watcher and our language server: one process group.
async function stopServer() {
  const exited = new Promise((resolve) => (server.exitCode !== null ? resolve() : server.once("exit", resolve)));
  try {
    process.kill(-server.pid, "SIGTERM");
  } catch {
    return;
  }
  await Promise.race([exited, sleep(5000)]);
  try {
    process.kill(-server.pid, "SIGKILL");
  } catch {
    // all gone
  }
}

async function finish(code) {
  await stopServer();
  if (process.env.GHOSTLINE_KEEP_E2E === "1") console.log(`kept ${root}`);
  else fs.rmSync(root, { recursive: true, force: true });
  process.exit(code);
}

main().then(() => {
  log("PASS");
  return finish(0);
}, (error) => {
  console.error(`FAIL: ${error.stack || error}`);
  return finish(1);
});
