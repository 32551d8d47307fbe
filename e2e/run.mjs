// Runs the browser test suite: `node e2e/run.mjs` (inside a loopback-only network namespace, see
// the README). Uses the binary at $CONVENE_BIN (default target/debug/convene) and /usr/bin/chromium.

import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { networkInterfaces } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { binary, chromiumPath, outputDir } from "./lib/harness.mjs";

const here = dirname(fileURLToPath(import.meta.url));

for (const [what, path] of [
  ["convene binary (build it with `cargo build`, or set CONVENE_BIN)", binary],
  ["Chromium (apt-get install chromium)", chromiumPath],
  ["playwright-core (npm --prefix e2e ci)", join(here, "node_modules", "playwright-core")],
]) {
  if (!existsSync(path)) {
    console.error(`missing ${what}: ${path}`);
    process.exit(2);
  }
}

// Outside a loopback-only namespace Chromium may pick another interface for ICE; say so plainly.
const others = Object.keys(networkInterfaces()).filter((name) => name !== "lo");
if (others.length > 0) {
  console.warn(`warning: network interfaces besides lo (${others.join(", ")}); run inside \`unshare --net\` as the README shows`);
}

const only = process.argv.slice(2);
const files = readdirSync(join(here, "tests"))
  .filter((f) => f.endsWith(".test.mjs"))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => join(here, "tests", f));

console.log(`browser tests: ${files.length} files; screenshots and logs in ${outputDir}`);
const result = spawnSync(process.execPath, ["--test", "--test-concurrency=1", "--test-reporter=spec", ...files], {
  stdio: "inherit",
  cwd: join(here, ".."),
});
process.exit(result.status ?? 1);
