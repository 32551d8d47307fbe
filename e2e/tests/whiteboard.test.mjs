// The whiteboard: the moderator opens it for everyone, draws a rectangle that the others see, a late
// joiner gets the current scene, and closing it closes it for everyone.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { joinMeeting, launchBrowser, newParticipant, screenshot, startServer, waitInPage } from "../lib/harness.mjs";

let server;
let browser;
let mod;
let guest;
let late;
const room = "e2e-whiteboard";

before(async () => {
  server = await startServer("whiteboard");
  browser = await launchBrowser();
  mod = await newParticipant(browser);
  guest = await newParticipant(browser);
  await joinMeeting(mod, server.url, room, "Moderator");
  await joinMeeting(guest, server.url, room, "Guest");
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const rectangles = (page) =>
  page.evaluate(() => (window.__convene?.whiteboardElements?.() ?? []).filter((e) => e.type === "rectangle").length);

test("the moderator opens the whiteboard and draws; the other participant sees the rectangle", async () => {
  await mod.getByTestId("toggle-whiteboard").click();
  for (const page of [mod, guest]) {
    await page.getByTestId("whiteboard").waitFor({ timeout: 20_000 });
    await waitInPage(page, () => typeof window.__convene?.whiteboardElements === "function", null, { what: "whiteboard ready", timeout: 20_000 });
  }
  // Draw with Excalidraw's own rectangle tool and a mouse drag on its canvas.
  await mod.locator('[data-testid="toolbar-rectangle"]').click({ force: true });
  const canvas = mod.locator("canvas.interactive");
  const box = await canvas.boundingBox();
  const x = box.x + box.width * 0.35;
  const y = box.y + box.height * 0.35;
  await mod.mouse.move(x, y);
  await mod.mouse.down();
  await mod.mouse.move(x + 120, y + 60, { steps: 5 });
  await mod.mouse.move(x + 220, y + 140, { steps: 5 });
  await mod.mouse.up();
  assert.equal(await rectangles(mod), 1);
  await waitInPage(guest, () => (window.__convene?.whiteboardElements?.() ?? []).some((e) => e.type === "rectangle"), null, { what: "rectangle at the guest" });
  await guest.waitForTimeout(300);
  await screenshot(mod, "07-whiteboard-moderator");
  await screenshot(guest, "08-whiteboard-guest");
});

test("a participant joining later sees the rectangle", async () => {
  late = await newParticipant(browser);
  await joinMeeting(late, server.url, room, "Latecomer");
  await late.getByTestId("whiteboard").waitFor({ timeout: 20_000 });
  await waitInPage(late, () => (window.__convene?.whiteboardElements?.() ?? []).some((e) => e.type === "rectangle"), null, { what: "rectangle at the late joiner", timeout: 20_000 });
  assert.equal(await rectangles(late), 1);
  await late.waitForTimeout(300);
  await screenshot(late, "09-whiteboard-late-joiner");
});

test("closing the whiteboard closes it for everyone", async () => {
  await mod.getByTestId("toggle-whiteboard").click();
  for (const page of [mod, guest, late]) {
    await waitInPage(page, () => !document.querySelector('[data-testid="whiteboard"]'), null, { what: "whiteboard closed" });
    await page.locator('[data-testid="tile"]').first().waitFor();
  }
});
