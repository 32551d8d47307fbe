// Recording from the web app: two people in a meeting, the moderator presses the record button, the
// other participant sees that recording is on, the moderator stops about 10 s later. The per-track
// files, the composed file and the manifest are then checked with ffprobe/ffmpeg as a user would
// (it decodes, it is as long as what was recorded), and the finalize command ran once. A second
// recording keeps the whiteboard: the server holds its key (room metadata) and saves the final scene.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { launchBrowser, newParticipant, startServer, waitForVideo, waitInPage } from "../lib/harness.mjs";

let server;
let browser;
let finalizeLog;
let ada;
let bob;
const room = "e2e-recording";

before(async () => {
  for (const tool of ["ffmpeg", "ffprobe"]) {
    const found = spawnSync(tool, ["-version"], { encoding: "utf8" });
    if (found.status !== 0) throw new Error(`${tool} is needed (apt-get install ffmpeg)`);
  }
  // A tiny finalize script that appends its argument to a log beside it.
  const scratch = mkdtempSync(join(tmpdir(), "convene-e2e-finalize-"));
  const script = join(scratch, "finalize.sh");
  finalizeLog = join(scratch, "finalize.log");
  writeFileSync(script, `#!/bin/sh\nprintf '%s\\n' "$1" >> ${JSON.stringify(finalizeLog)}\n`);
  chmodSync(script, 0o755);
  server = await startServer("recording", "", {
    recording: `min_free_space_mb = 0\ncompose_resolution = "640x360"\nfinalize_command = ${JSON.stringify(script)}\n`,
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** ffprobe's view of a media file: codec of the first stream, frames decoded, last timestamp, duration. */
function probe(path) {
  const out = spawnSync(
    "ffprobe",
    ["-v", "error", "-count_frames", "-show_entries", "stream=codec_type,codec_name,nb_read_frames:format=duration", "-of", "json", path],
    { encoding: "utf8" },
  );
  assert.equal(out.status, 0, `ffprobe ${path}: ${out.stderr}`);
  const info = JSON.parse(out.stdout);
  const last = spawnSync("ffprobe", ["-v", "error", "-show_entries", "packet=pts_time", "-of", "csv=p=0", path], { encoding: "utf8" });
  const times = last.stdout
    .split("\n")
    .map(Number)
    .filter((t) => Number.isFinite(t) && t > 0);
  return {
    streams: info.streams,
    duration: Number(info.format?.duration ?? 0),
    lastPts: times.length ? Math.max(...times) : 0,
  };
}

/**
 * What ffmpeg says while decoding every frame; a file that decodes cleanly gives "". Frames keep the
 * file's own (millisecond) times: by default ffmpeg 5.1 rounds a variable-rate stream to 1/frame rate
 * on the way to the null muxer and then reports two distinct frames in one slot as "non monotonically
 * increasing dts", a complaint about its own rounding. Frames that truly share a time still fail.
 */
function decodeErrors(path) {
  const out = spawnSync("ffmpeg", ["-v", "error", "-xerror", "-i", path, "-enc_time_base", "-1", "-f", "null", "-"], { encoding: "utf8" });
  return `${out.stderr}`.trim() + (out.status === 0 ? "" : ` (exit ${out.status})`);
}

/**
 * Joins once the prejoin page shows the camera: "Join" pressed before the devices open joins without
 * them (the first getUserMedia of a fresh browser can take seconds), and a recording needs both tracks.
 */
async function joinWithDevices(page, name) {
  await page.goto(`${server.url}/${room}`);
  await waitInPage(page, () => document.querySelector("video")?.videoWidth > 0, null, { what: `${name}'s camera preview` });
  await page.locator('input[name="display-name"]').fill(name);
  await page.getByTestId("join").click();
  await page.getByTestId("meeting").waitFor({ timeout: 15_000 });
}

async function until(what, condition, timeout) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n--- server log ---\n${server.log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test("the moderator records 10 s of a two-person meeting from the web app", { timeout: 240_000 }, async (t) => {
  ada = await newParticipant(browser);
  bob = await newParticipant(browser);
  await joinWithDevices(ada, "Ada");
  await joinWithDevices(bob, "Bob");
  await Promise.all([waitForVideo(ada), waitForVideo(bob)]);
  assert.equal(await ada.getByTestId("meeting").getAttribute("data-moderator"), "true");
  assert.equal(await bob.getByTestId("toggle-record").count(), 0, "only the moderator has the record button");
  assert.equal(await bob.getByTestId("recording-indicator").count(), 0);

  // The recording's span on the server lies between the click and the indicator on Ada's page; the
  // same holds for the stop. So its length is at least stopClicked - shownAt and at most hiddenAt - startClicked.
  const startClicked = Date.now();
  await ada.getByTestId("toggle-record").click();
  await waitInPage(ada, () => !!document.querySelector('[data-testid="recording-indicator"]'), null, { what: "recording indicator at Ada" });
  const shownAt = Date.now();
  await waitInPage(bob, () => !!document.querySelector('[data-testid="recording-indicator"]'), null, { what: "recording indicator at Bob" });
  assert.equal(await ada.getByTestId("toggle-record").getAttribute("aria-pressed"), "true");

  await ada.waitForTimeout(10_000 - (Date.now() - shownAt));
  const stopClicked = Date.now();
  await ada.getByTestId("toggle-record").click();
  await waitInPage(ada, () => !document.querySelector('[data-testid="recording-indicator"]'), null, { what: "indicator gone at Ada" });
  const hiddenAt = Date.now();
  await waitInPage(bob, () => !document.querySelector('[data-testid="recording-indicator"]'), null, { what: "indicator gone at Bob" });
  const least = (stopClicked - shownAt) / 1000;
  const most = (hiddenAt - startClicked) / 1000;

  // One recording directory; the finalize command runs after composition, with that directory.
  const dirs = readdirSync(server.recordingsDir).map((d) => join(server.recordingsDir, d));
  assert.equal(dirs.length, 1, `${dirs}`);
  const dir = dirs[0];
  await until("the finalize command", () => existsSync(finalizeLog), 120_000);
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));

  assert.equal(manifest.room, room);
  assert.equal(manifest.end_reason, "stopped");
  const length = manifest.duration_ms / 1000;
  t.diagnostic(`recording ${length} s (between ${least} and ${most} s by the clicks)`);
  assert.ok(length >= least - 0.2 && length <= most + 0.2, `recording is ${length} s, expected ${least}..${most} s`);
  const names = Object.fromEntries(manifest.participants.map((p) => [p.id, p.name]));
  assert.deepEqual(Object.values(names).sort(), ["Ada", "Bob"]);

  // Each participant published a microphone and a camera: four files, each named in the manifest.
  const webm = readdirSync(dir).filter((f) => f.endsWith(".webm") && f !== manifest.composition?.file);
  assert.deepEqual(manifest.files.map((f) => f.file).sort(), webm.sort());
  assert.equal(manifest.files.length, 4, JSON.stringify(manifest.files));
  for (const name of ["Ada", "Bob"]) {
    const mine = manifest.files.filter((f) => names[f.participant_id] === name);
    assert.deepEqual(mine.map((f) => f.kind).sort(), ["audio", "video"], `${name}: ${JSON.stringify(mine)}`);
  }

  // Every file's figures first, so a failure below shows all of them.
  for (const file of manifest.files) {
    const p = probe(join(dir, file.file));
    t.diagnostic(`${file.file}: ${file.codec}, starts at ${file.start_offset_ms} ms, ${p.duration} s, last frame ${p.lastPts} s, ${p.streams[0]?.nb_read_frames} frames`);
  }
  for (const file of manifest.files) {
    const path = join(dir, file.file);
    assert.equal(decodeErrors(path), "", `${file.file} does not decode cleanly`);
    const p = probe(path);
    assert.equal(p.streams.length, 1, file.file);
    const stream = p.streams[0];
    assert.equal(stream.codec_type, file.kind, file.file);
    assert.equal(stream.codec_name, file.kind === "audio" ? "opus" : file.codec, file.file);
    // A track runs from its first written frame (audio: the first packet after the start; video: the
    // keyframe the recorder asked for, which Chromium sends within a few hundred ms) to the stop. The
    // file's own clock starts at that frame, so its length is the recording's minus its start offset.
    // Tolerance 0.5 s: a 20 ms audio packet or a 50 ms video frame at either end, plus the time the stop
    // takes to reach the media loop, which the click/indicator window above does not bound as tightly.
    const expected = length - file.start_offset_ms / 1000;
    assert.ok(file.start_offset_ms < 2000, `${file.file} starts late: ${file.start_offset_ms} ms`);
    assert.ok(Math.abs(p.lastPts - expected) < 0.5, `${file.file}: last frame at ${p.lastPts} s, expected about ${expected} s`);
    assert.ok(Math.abs(p.duration - expected) < 0.5, `${file.file}: duration ${p.duration} s, expected about ${expected} s`);
    // Frames actually decoded: Opus packets are 20 ms; Chromium's fake camera runs at up to 20 fps and
    // lowers its rate on a busy machine, so video needs only a quarter of that (a cut file has far fewer).
    const frames = Number(stream.nb_read_frames);
    const minimum = file.kind === "audio" ? expected * 50 * 0.9 : expected * 5;
    assert.ok(frames >= minimum, `${file.file}: ${frames} frames decoded, expected at least ${minimum}`);
    assert.equal(file.frames, frames, `${file.file}: manifest says ${file.frames} frames`);
  }

  // The composed file: all of the recording, video and audio, decoding cleanly.
  assert.equal(manifest.composition?.status, "done", JSON.stringify(manifest.composition));
  const composed = join(dir, manifest.composition.file);
  assert.equal(decodeErrors(composed), "", "the composed file does not decode cleanly");
  const c = probe(composed);
  assert.deepEqual(c.streams.map((s) => s.codec_type).sort(), ["audio", "video"]);
  t.diagnostic(`composed ${manifest.composition.file}: ${c.duration} s in ${manifest.composition.elapsed_ms} ms`);
  assert.ok(Math.abs(c.duration - length) < 0.5, `composed file is ${c.duration} s, the recording ${length} s`);

  // Finalize ran exactly once, with the recording directory (give a second run time to show up).
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(readFileSync(finalizeLog, "utf8").split("\n").filter(Boolean), [dir]);
});

test("a recording keeps the whiteboard's final scene", { timeout: 120_000 }, async () => {
  const before = new Set(readdirSync(server.recordingsDir));
  await ada.getByTestId("toggle-record").click();
  await waitInPage(bob, () => !!document.querySelector('[data-testid="recording-indicator"]'), null, { what: "recording indicator at Bob" });
  await ada.getByTestId("toggle-whiteboard").click();
  for (const page of [ada, bob]) {
    await page.getByTestId("whiteboard").waitFor({ timeout: 20_000 });
    await waitInPage(page, () => typeof window.__convene?.whiteboardElements === "function", null, { what: "whiteboard ready", timeout: 20_000 });
  }
  // Draw with Excalidraw's own rectangle tool, as in the whiteboard test.
  await ada.locator('[data-testid="toolbar-rectangle"]').click({ force: true });
  const box = await ada.locator("canvas.interactive").boundingBox();
  const x = box.x + box.width * 0.35;
  const y = box.y + box.height * 0.35;
  await ada.mouse.move(x, y);
  await ada.mouse.down();
  await ada.mouse.move(x + 120, y + 60, { steps: 5 });
  await ada.mouse.move(x + 220, y + 140, { steps: 5 });
  await ada.mouse.up();
  await waitInPage(bob, () => (window.__convene?.whiteboardElements?.() ?? []).some((e) => e.type === "rectangle"), null, { what: "rectangle at Bob" });
  const drawn = await ada.evaluate(() => window.__convene.whiteboardElements().filter((e) => e.type === "rectangle" && !e.isDeleted));
  assert.equal(drawn.length, 1);

  await ada.getByTestId("toggle-record").click();
  await waitInPage(ada, () => !document.querySelector('[data-testid="recording-indicator"]'), null, { what: "indicator gone at Ada" });
  const dirs = readdirSync(server.recordingsDir).filter((d) => !before.has(d));
  assert.equal(dirs.length, 1, `${dirs}`);
  const dir = join(server.recordingsDir, dirs[0]);
  const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  assert.equal(manifest.whiteboard.used, true);
  assert.equal(manifest.whiteboard.file, "whiteboard.excalidraw", JSON.stringify(manifest.whiteboard));
  const scene = JSON.parse(readFileSync(join(dir, "whiteboard.excalidraw"), "utf8"));
  assert.equal(scene.type, "excalidraw");
  // The very rectangle Ada drew, in its latest version.
  const saved = scene.elements.filter((e) => e.type === "rectangle");
  assert.equal(saved.length, 1, JSON.stringify(scene.elements));
  assert.equal(saved[0].id, drawn[0].id);
  // Drawn by dragging: a real size, not a click's zero-size first version.
  assert.ok(saved[0].width > 50 && saved[0].height > 50, JSON.stringify(saved[0]));
});
