// Writes source.sha256 beside the built bundle: the sha256 of the sources it was built from, so a
// test (tests/test_ui_bundle.py, which computes the same hash in Python) fails when the committed
// bundle is older than its sources. Hashed: the build's inputs (the files in INPUTS, and every file
// under the folders in INPUTS but tests, *.test.ts), in sorted order, each as "<path>\0<bytes>\0".
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = process.env.UI_OUT_DIR ?? join(root, "..", "server", "static", "ui");

export const INPUTS = [
  ".npmrc",
  "index.html",
  "package-lock.json",
  "package.json",
  "scripts",
  "src",
  "tsconfig.json",
  "vite.config.ts",
];

function walk(path) {
  if (!statSync(path).isDirectory()) return [relative(root, path).split(sep).join("/")];
  return readdirSync(path).flatMap((name) => (name.endsWith(".test.ts") ? [] : walk(join(path, name))));
}

const hash = createHash("sha256");
const files = INPUTS.flatMap((input) => walk(join(root, input)));
for (const path of files.sort()) {
  hash.update(`${path}\0`);
  hash.update(readFileSync(join(root, path)));
  hash.update("\0");
}
writeFileSync(join(out, "source.sha256"), `${hash.digest("hex")}\n`);
