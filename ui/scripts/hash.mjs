// Writes source.sha256 beside the built bundle: the sha256 of the sources it was built from, so a
// test (tests/test_ui_bundle.py, which computes the same hash in Python) fails when the committed
// bundle is older than its sources. Hashed: every file under ui/ except node_modules/ and tests
// (*.test.ts), in sorted order, each as "<path>\0<bytes>\0".
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = process.env.UI_OUT_DIR ?? join(root, "..", "server", "static", "ui");

function walk(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : walk(path);
    return entry.name.endsWith(".test.ts") ? [] : [relative(root, path).split(sep).join("/")];
  });
}

const hash = createHash("sha256");
for (const path of walk(root).sort()) {
  hash.update(`${path}\0`);
  hash.update(readFileSync(join(root, path)));
  hash.update("\0");
}
writeFileSync(join(out, "source.sha256"), `${hash.digest("hex")}\n`);
