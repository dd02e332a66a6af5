// Unit tests of the VS Code extension's logic (editors/vscode: accept.ts, settings.ts, status.ts
// and test/*.test.ts): compiled by tsc into OUTDIR (not the source tree: several build folders
// run this at once), then run with node's test runner.
//   node run_unit.js OUTDIR
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const ext = path.resolve(__dirname, "..", "..", "..", "editors", "vscode");
const out = path.resolve(process.argv[2] || path.join(ext, "out"));
const tsc = path.join(ext, "node_modules", "typescript", "bin", "tsc");
if (!fs.existsSync(tsc)) {
  console.error(`FAIL: ${tsc} is missing (run tools/setup.sh, which runs npm ci in editors/vscode)`);
  process.exit(1);
}
fs.rmSync(out, { recursive: true, force: true });
const run = (args) => spawnSync(process.execPath, args, { cwd: ext, stdio: "inherit" }).status;
if (run([tsc, "-p", "tsconfig.test.json", "--outDir", out]) !== 0) process.exit(1);
const tests = fs.readdirSync(path.join(out, "test")).filter((f) => f.endsWith(".test.js")).map((f) => path.join(out, "test", f));
if (tests.length === 0) {
  console.error("FAIL: no compiled tests");
  process.exit(1);
}
process.exit(run(["--test", ...tests]));
