// HTTPS with the self-signed mode in a real browser: Chromium reaches Convene by a host name (not
// localhost, so only HTTPS makes the page a secure context), trusts exactly the generated certificate,
// gets camera and microphone, and two participants see each other's video over wss signaling.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { X509Certificate, createHash } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const binary = resolve(here, "..", "..", "..", process.env.CONVENE_BIN ?? "target/debug/convene");
const HOST = "meet.test";

let server;
let browser;
let stateDir;

async function freeUdpPort() {
  const socket = createSocket("udp4");
  await new Promise((r) => socket.bind(0, "127.0.0.1", r));
  const { port } = socket.address();
  await new Promise((r) => socket.close(r));
  return port;
}

/** Starts `convene serve` in self-signed mode; resolves with its port once HTTPS listens. */
async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), "convene-tls-browser-"));
  stateDir = join(dir, "state");
  const config = join(dir, "convene.toml");
  writeFileSync(
    config,
    `[media]
port = ${await freeUdpPort()}
bind = "127.0.0.1"
candidates = ["127.0.0.1"]

[tls]
mode = "self_signed"
state_dir = ${JSON.stringify(stateDir)}
names = ["${HOST}"]
`,
  );
  const child = spawn(binary, ["serve", "--config", config, "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  let log = "";
  const port = await new Promise((resolvePort, reject) => {
    const timer = setTimeout(() => reject(new Error(`no https listener in 20 s:\n${log}`)), 20_000);
    const onData = (chunk) => {
      log += chunk.toString();
      const m = /https listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  return {
    port,
    log: () => log,
    stop() {
      child.kill("SIGKILL");
    },
  };
}

/** base64(SHA-256(SubjectPublicKeyInfo)) of the served certificate: what Chromium is told to trust. */
function spkiHash() {
  const cert = new X509Certificate(readFileSync(join(stateDir, "cert.pem")));
  const spki = cert.publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(spki).digest("base64");
}

before(async () => {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      "--allow-loopback-in-peer-connection",
      "--disable-gpu",
      "--disable-quic",
      `--host-resolver-rules=MAP ${HOST} 127.0.0.1`,
      // Trust exactly the certificate Convene generated, for this browser only.
      `--ignore-certificate-errors-spki-list=${spkiHash()}`,
    ],
  });
});

after(async () => {
  await browser?.close();
  server?.stop();
});

async function participant() {
  const context = await browser.newContext({ permissions: ["camera", "microphone"] });
  const page = await context.newPage();
  const log = [];
  page.on("console", (m) => log.push(`[${m.type()}] ${m.text()}`));
  page.on("pageerror", (e) => log.push(`[pageerror] ${e.message}`));
  page.consoleLog = log;
  return page;
}

async function framesDecoded(page) {
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

test("the log says how to trust the generated CA", () => {
  assert.match(server.log(), /self-signed certificate for .*meet\.test/);
  assert.ok(server.log().includes(join(stateDir, "ca.pem")), server.log());
});

test("over https by host name the page is a secure context with camera and microphone", async () => {
  const page = await participant();
  const response = await page.goto(`https://${HOST}:${server.port}/health`);
  assert.equal(response.status(), 200);
  assert.equal((await response.text()).trim(), "ok");
  const security = await response.securityDetails();
  assert.match(security.issuer, /Convene local CA/);
  const result = await page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const kinds = stream.getTracks().map((t) => t.kind).sort();
    stream.getTracks().forEach((t) => t.stop());
    return { secure: window.isSecureContext, kinds };
  });
  assert.deepEqual(result, { secure: true, kinds: ["audio", "video"] });
  await page.context().close();
});

test("two participants meet over https and wss and decode each other's video", async () => {
  const base = `https://${HOST}:${server.port}`;
  const pages = [await participant(), await participant()];
  for (const [i, page] of pages.entries()) {
    await page.goto(`${base}/tls-room`);
    await page.locator('input[name="display-name"]').fill(`P${i}`);
    await page.getByTestId("join").click();
    await page.getByTestId("meeting").waitFor({ timeout: 15_000 });
  }
  for (const page of pages) {
    const start = Date.now();
    let frames = 0;
    while (Date.now() - start < 20_000 && frames === 0) {
      frames = await framesDecoded(page);
      if (frames === 0) await page.waitForTimeout(200);
    }
    assert.ok(frames > 0, `no video decoded over https:\n${page.consoleLog.slice(-20).join("\n")}\n--- server ---\n${server.log().slice(-3000)}`);
    await page.waitForTimeout(1000);
    assert.ok((await framesDecoded(page)) > frames, "video stopped");
  }
  for (const page of pages) await page.context().close();
});
