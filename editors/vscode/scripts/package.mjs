// Builds the extension and packages it as a .vsix, in a staging folder so the source tree is not
// written to (tests run this from several build folders at once):
//   node scripts/package.mjs [--out FILE.vsix]     (default: ghostline.vsix here)
// Steps: type-check (tsc --noEmit), bundle src/extension.ts with esbuild (vscode-languageclient
// inside, `vscode` external), write the licences of the bundled npm packages to
// ThirdPartyNotices.txt, then `vsce package` of package.json + README.md + those two.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const outIndex = args.indexOf("--out");
const out = resolve(outIndex >= 0 ? args[outIndex + 1] : join(root, "ghostline.vsix"));
const bin = (name) => join(root, "node_modules", ".bin", name);
const run = (cmd, argv, cwd) => execFileSync(cmd, argv, { cwd, stdio: ["ignore", "inherit", "inherit"] });

// The licence text of every npm package that has a file in the bundle.
function notices(inputs) {
  const packages = new Set();
  for (const input of inputs) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) packages.add(m[1]);
  }
  const parts = ["Ghostline for VS Code bundles these npm packages:\n"];
  for (const dir of [...packages].sort()) {
    const pkg = JSON.parse(readFileSync(join(root, dir, "package.json"), "utf8"));
    const file = readdirSync(join(root, dir)).find((f) => /^licen[cs]e(\.(md|txt))?$/i.test(f));
    if (!file) throw new Error(`${pkg.name}: no licence file to bundle`);
    parts.push(`\n---- ${pkg.name} ${pkg.version} (${pkg.license}) ----\n\n${readFileSync(join(root, dir, file), "utf8").trim()}\n`);
  }
  return parts.join("");
}

const stage = mkdtempSync(join(tmpdir(), "ghostline-vsix-"));
try {
  run(bin("tsc"), ["--noEmit", "-p", root], root);
  const esbuild = await import(join(root, "node_modules", "esbuild", "lib", "main.js"));
  const result = await esbuild.build({
    absWorkingDir: root,   // metafile paths are relative to it
    entryPoints: [join(root, "src", "extension.ts")],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node18",
    external: ["vscode"],
    minify: true,
    legalComments: "none",
    outfile: join(stage, "dist", "extension.js"),
    logLevel: "warning",
    metafile: true,
  });
  writeFileSync(join(stage, "ThirdPartyNotices.txt"), notices(Object.keys(result.metafile.inputs)));
  for (const f of ["package.json", "README.md", ".vscodeignore"]) copyFileSync(join(root, f), join(stage, f));
  mkdirSync(dirname(out), { recursive: true });
  run(bin("vsce"), ["package", "--no-dependencies", "--skip-license", "--allow-missing-repository", "--out", out], stage);
  console.log(`${out}: ${statSync(out).size} bytes`);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
