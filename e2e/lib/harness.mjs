// Test harness: starts the real `convene serve` binary on 127.0.0.1 with a temporary config, launches
// Debian's Chromium through playwright-core with fake camera and microphone, and offers the steps the
// tests share (join a meeting, wait for decoded video, take screenshots).

import { spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, "..", "..");
export const outputDir = resolve(process.env.E2E_OUTPUT ?? join(repoRoot, "e2e", "output"));
mkdirSync(outputDir, { recursive: true });

export const binary = resolve(repoRoot, process.env.CONVENE_BIN ?? "target/debug/convene");
export const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

/** A UDP port that is free right now on `address` (for the media socket). */
export async function freeUdpPort(address = "127.0.0.1") {
  const socket = createSocket("udp4");
  await new Promise((r) => socket.bind(0, address, r));
  const { port } = socket.address();
  await new Promise((r) => socket.close(r));
  return port;
}

let sections = null;

/** The config sections this binary knows (from `check-config --print` of an empty file). */
function knownSections(dir) {
  if (sections) return sections;
  const empty = join(dir, "empty.toml");
  writeFileSync(empty, "");
  const out = spawnSync(binary, ["check-config", empty, "--print"], { encoding: "utf8" });
  sections = new Set([...(out.stdout ?? "").matchAll(/^\[([a-z_]+)\]/gm)].map((m) => m[1]));
  return sections;
}

/**
 * Starts `convene serve` with `extraToml` appended to a loopback-only config; `recording` holds extra
 * lines for the `[recording]` section (which the harness writes itself, so tests cannot repeat it).
 * Resolves once the server logs "http listening on ADDR"; `dir` is the server's temporary directory and
 * `recordingsDir` where its recordings go.
 */
export async function startServer(name, extraToml = "", { recording = "" } = {}) {
  if (!existsSync(binary)) {
    throw new Error(`convene binary not found at ${binary}: build it (cargo build) or set CONVENE_BIN`);
  }
  const dir = mkdtempSync(join(tmpdir(), "convene-e2e-"));
  const known = knownSections(dir);
  let config = `
[server]
listen = "127.0.0.1:0"
drain_timeout = "1s"

[log]
level = "info,convene=debug"
`;
  if (known.has("media")) {
    // Media on loopback only, on a port of its own so suites never collide.
    config += `
[media]
port = ${await freeUdpPort()}
bind = "127.0.0.1"
candidates = ["127.0.0.1"]
`;
  }
  const recordingsDir = join(dir, "recordings");
  if (known.has("recording")) config += `\n[recording]\nrecordings_dir = ${JSON.stringify(recordingsDir)}\n${recording}\n`;
  config += `\n${extraToml}\n`;
  const configPath = join(dir, "convene.toml");
  writeFileSync(configPath, config);
  const child = spawn(binary, ["serve", "--config", configPath, "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  const logPath = join(outputDir, `${name}.server.log`);
  let log = "";
  const url = await new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 20 s:\n${log}`)), 20_000);
    let listening = false;
    const onData = (chunk) => {
      log += chunk.toString();
      if (listening) return;
      const m = /http listening on (\S+)/.exec(log);
      if (m) {
        listening = true;
        clearTimeout(timer);
        resolvePromise(`http://${m[1]}`);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${log}`));
    });
  });
  // The start-up listener keeps collecting the log (adding another here would record every line twice).
  return {
    url,
    dir,
    recordingsDir,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        const exited = new Promise((r) => child.once("exit", r));
        const timeout = new Promise((r) => setTimeout(r, 5000, "timeout"));
        if ((await Promise.race([exited, timeout])) === "timeout") child.kill("SIGKILL");
      }
      writeFileSync(logPath, log);
    },
  };
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      "--allow-loopback-in-peer-connection",
      "--autoplay-policy=no-user-gesture-required",
      "--disable-gpu",
      "--disable-quic",
    ],
  });
}

/** A participant: its own browser context (own storage), one page. */
export async function newParticipant(browser, { viewport = { width: 1280, height: 800 } } = {}) {
  const context = await browser.newContext({ viewport, permissions: ["camera", "microphone"] });
  const page = await context.newPage();
  const consoleLog = [];
  page.on("console", (m) => consoleLog.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => consoleLog.push(`[pageerror] ${e.message}`));
  page.consoleLog = consoleLog;
  return page;
}

/** Opens `/<room>`, fills the prejoin page and joins; resolves when the meeting is on screen. */
export async function joinMeeting(page, baseUrl, room, name, { prejoin = true } = {}) {
  await page.goto(prejoin ? `${baseUrl}/${room}` : `${baseUrl}/${room}?name=${encodeURIComponent(name)}`);
  if (prejoin) {
    await page.locator('input[name="display-name"]').fill(name);
    await page.getByTestId("join").click();
  }
  await page.getByTestId("meeting").waitFor({ timeout: 15_000 });
}

/** Waits until `condition` (run in the page) is truthy; returns its value. */
export async function waitInPage(page, condition, arg, { timeout = 15_000, what = "condition" } = {}) {
  try {
    const handle = await page.waitForFunction(condition, arg, { timeout, polling: 100 });
    return await handle.jsonValue();
  } catch (e) {
    throw new Error(`timed out waiting for ${what}: ${e.message}\n--- page console ---\n${(page.consoleLog ?? []).slice(-30).join("\n")}`);
  }
}

/** Sum of framesDecoded over every inbound video stream of the page's peer connection. */
export async function framesDecoded(page) {
  return page.evaluate(async () => {
    const pc = window.__convene?.conference?.media?.pc;
    if (!pc) return 0;
    let frames = 0;
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") frames += s.framesDecoded ?? 0;
    });
    return frames;
  });
}

/** Waits until the page decodes video and keeps decoding (frames rise between two reads). */
export async function waitForVideo(page, { timeout = 20_000 } = {}) {
  const start = Date.now();
  let first = 0;
  while (Date.now() - start < timeout) {
    first = await framesDecoded(page);
    if (first > 0) break;
    await page.waitForTimeout(200);
  }
  if (first === 0) throw new Error(`no video frame decoded within ${timeout} ms\n${(page.consoleLog ?? []).slice(-30).join("\n")}`);
  await page.waitForTimeout(1000);
  const second = await framesDecoded(page);
  if (second <= first) throw new Error(`framesDecoded stopped at ${first}`);
  return { first, second };
}

export async function screenshot(page, name) {
  const path = join(outputDir, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

/** Names shown on the meeting tiles of a page. */
export async function tileNames(page) {
  return page.getByTestId("tile").evaluateAll((tiles) => tiles.map((t) => t.getAttribute("data-name")));
}
