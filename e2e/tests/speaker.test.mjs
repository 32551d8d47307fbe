// Dominant speaker and last-N in real browsers: of three participants two join muted, so the third
// (whose fake microphone beeps) is the only one the server hears. Everyone is told it is the
// dominant speaker, and the others' speaker view shows it as the large tile. A participant who
// picks "1 video" receives the speaker's camera only; the other camera shows the avatar, and its
// video comes back (from a keyframe) when "All" is picked again.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { launchBrowser, newParticipant, screenshot, startServer, waitInPage } from "../lib/harness.mjs";

let server;
let browser;

before(async () => {
  server = await startServer("speaker");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function join(page, name, { muted }) {
  await page.goto(`${server.url}/e2e-speaker`);
  await page.locator('input[name="display-name"]').fill(name);
  if (muted) await page.locator('input[name="audio-muted"]').check();
  await page.getByTestId("join").click();
  await page.getByTestId("meeting").waitFor({ timeout: 15_000 });
  return page.evaluate(() => window.__convene.conference.getSnapshot().room.you);
}

/** Per inbound video mid: frames and keyframes decoded. */
async function videoIn(page) {
  return page.evaluate(async () => {
    const out = {};
    (await window.__convene.conference.media.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") out[s.mid] = { frames: s.framesDecoded ?? 0, keyframes: s.keyFramesDecoded ?? 0 };
    });
    return out;
  });
}

/** The mid on which `page` receives `participant`'s camera. */
async function cameraMid(page, participant) {
  return page.evaluate(
    (p) => window.__convene.conference.getSnapshot().room.tracks.find((t) => t.participant_id === p && t.source === "camera")?.mid,
    participant,
  );
}

async function framesOver(page, ms) {
  const a = await videoIn(page);
  await page.waitForTimeout(ms);
  const b = await videoIn(page);
  const out = {};
  for (const mid of Object.keys(b)) out[mid] = b[mid].frames - (a[mid]?.frames ?? 0);
  return out;
}

test("the unmuted participant is the dominant speaker and the large tile; last-N 1 forwards only its camera", async () => {
  const pages = [await newParticipant(browser), await newParticipant(browser), await newParticipant(browser)];
  const ada = await join(pages[0], "Ada", { muted: false });
  const bo = await join(pages[1], "Bo", { muted: true });
  const cy = await join(pages[2], "Cy", { muted: true });
  for (const page of pages) await page.getByTestId("toggle-view").click();

  for (const [i, page] of pages.entries()) {
    await waitInPage(page, (id) => window.__convene.conference.getSnapshot().room.dominantSpeaker === id, ada, {
      what: `${["Ada", "Bo", "Cy"][i]} hears that Ada is the dominant speaker`,
      timeout: 25_000,
    });
  }
  for (const page of pages.slice(1)) {
    const until = Date.now() + 20_000;
    let seen;
    while (Date.now() < until) {
      seen = await page.evaluate(() => {
        const view = document.querySelector('[data-testid="speaker-view"]');
        return { main: view?.getAttribute("data-main"), width: view?.querySelector(".main-tile video")?.videoWidth ?? 0 };
      });
      if (seen.main === ada && seen.width > 0) break;
      await page.waitForTimeout(200);
    }
    assert.ok(seen.main === ada && seen.width > 0, `Ada's video is the large tile: ${JSON.stringify({ ada, seen, video: await videoIn(page) })}`);
  }
  await screenshot(pages[1], "speaker-view");

  // Bo wants one video: Ada's keeps coming, Cy's stops and her tile shows the avatar.
  const [adaMid, cyMid] = [await cameraMid(pages[1], ada), await cameraMid(pages[1], cy)];
  assert.ok(adaMid && cyMid, "Bo receives both cameras");
  // Both cameras decode before anything is paused (video can take a few seconds to start).
  const started = Date.now() + 20_000;
  let decoded = {};
  while (Date.now() < started) {
    decoded = await videoIn(pages[1]);
    if (decoded[adaMid]?.frames > 5 && decoded[cyMid]?.frames > 5) break;
    await pages[1].waitForTimeout(200);
  }
  assert.ok(decoded[adaMid]?.frames > 5 && decoded[cyMid]?.frames > 5, `Bo decodes both cameras: ${JSON.stringify(decoded)}`);
  await pages[1].getByTestId("last-n").selectOption("1");
  await waitInPage(pages[1], (mid) => window.__convene.conference.getSnapshot().room.pausedMids.includes(mid), cyMid, {
    what: "Cy's camera listed as paused",
  });
  await waitInPage(pages[1], (id) => document.querySelector(`[data-testid="tile"][data-participant="${id}"]`)?.getAttribute("data-paused") === "true", cy, {
    what: "Cy's tile shows the avatar",
  });
  // Frames already queued for sending (paced to the bandwidth estimate) may still arrive: wait until
  // Cy's video stands still for a second, then measure.
  const settle = Date.now() + 8_000;
  while (Date.now() < settle && ((await framesOver(pages[1], 1000))[cyMid] ?? 0) > 0);
  const limited = await framesOver(pages[1], 2000);
  assert.ok(limited[adaMid] > 10, `Ada's video keeps flowing: ${JSON.stringify(limited)}`);
  assert.equal(limited[cyMid] ?? -1, 0, `Cy's video is not forwarded: ${JSON.stringify(limited)}`);
  // Cy asked for nothing: she still receives both.
  const cyView = await framesOver(pages[2], 1500);
  assert.ok(Object.values(cyView).filter((n) => n > 5).length === 2, `Cy still decodes both: ${JSON.stringify(cyView)}`);
  await screenshot(pages[1], "speaker-last-n-1");

  // Back to all videos: Cy's camera resumes, decoding again from a keyframe.
  const before = (await videoIn(pages[1]))[cyMid];
  await pages[1].getByTestId("last-n").selectOption("0");
  await waitInPage(pages[1], (mid) => !window.__convene.conference.getSnapshot().room.pausedMids.includes(mid), cyMid, {
    what: "Cy's camera resumed",
  });
  const until = Date.now() + 10_000;
  let now = before;
  while (Date.now() < until) {
    now = (await videoIn(pages[1]))[cyMid];
    if (now.frames > before.frames + 10) break;
    await pages[1].waitForTimeout(200);
  }
  assert.ok(now.frames > before.frames + 10, `Cy's video decodes again: ${JSON.stringify({ before, now })}`);
  assert.ok(now.keyframes > before.keyframes, `it resumed at a keyframe: ${JSON.stringify({ before, now })}`);
  assert.equal(
    await pages[1].evaluate((id) => document.querySelector(`[data-testid="tile"][data-participant="${id}"]`)?.getAttribute("data-paused"), cy),
    "false",
  );
  void bo;
});
