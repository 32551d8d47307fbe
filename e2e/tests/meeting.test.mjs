// Two people in a meeting: the welcome and prejoin pages, decoded video both ways, names on tiles,
// chat, and moderator powers that a participant neither sees nor can force.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  joinMeeting,
  launchBrowser,
  newParticipant,
  screenshot,
  startServer,
  tileNames,
  waitForVideo,
  waitInPage,
} from "../lib/harness.mjs";
import { events, myId, recordEvents } from "../lib/events.mjs";

let server;
let browser;
let ada;
let bob;
const room = "e2e-meeting";

before(async () => {
  server = await startServer("meeting");
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

test("welcome page starts a meeting and the prejoin page previews the camera", async () => {
  const page = await newParticipant(browser);
  await page.goto(`${server.url}/`);
  await page.locator("#room-name").waitFor();
  await screenshot(page, "01-welcome");
  await page.locator("#room-name").fill("Preview Room");
  await page.getByRole("button", { name: "Start meeting" }).click();
  await page.waitForURL(/\/preview-room$/);
  await waitInPage(page, () => document.querySelector("video")?.videoWidth > 0, null, { what: "camera preview" });
  await screenshot(page, "02-prejoin");
  await page.close();
});

test("two participants decode each other's video and see each other's names", async () => {
  ada = await newParticipant(browser);
  bob = await newParticipant(browser);
  await joinMeeting(ada, server.url, room, "Ada");
  await recordEvents(ada);
  await joinMeeting(bob, server.url, room, "Bob");
  await recordEvents(bob);

  const [a, b] = await Promise.all([waitForVideo(ada), waitForVideo(bob)]);
  assert.ok(a.second > a.first && b.second > b.first);

  await waitInPage(ada, () => [...document.querySelectorAll('[data-testid="tile"]')].some((t) => t.dataset.name === "Bob"), null, { what: "Bob's tile at Ada" });
  await waitInPage(bob, () => [...document.querySelectorAll('[data-testid="tile"]')].some((t) => t.dataset.name === "Ada"), null, { what: "Ada's tile at Bob" });
  assert.deepEqual((await tileNames(ada)).sort(), ["Ada", "Bob"]);
  // The remote tile shows live video, not the avatar.
  await waitInPage(ada, () => {
    const tile = [...document.querySelectorAll('[data-testid="tile"]')].find((t) => t.dataset.name === "Bob");
    return tile?.querySelector("video")?.videoWidth > 0;
  }, null, { what: "Bob's video element playing at Ada" });
  await screenshot(ada, "03-meeting");
});

test("a chat message from one participant appears for the other", async () => {
  await bob.getByTestId("toggle-chat").click();
  await bob.locator('input[name="chat-text"]').fill("hello from Bob");
  await bob.locator('input[name="chat-text"]').press("Enter");
  await waitInPage(ada, () => Number(document.querySelector('[data-testid="toggle-chat-badge"]')?.textContent) === 1, null, { what: "unread badge" });
  await ada.getByTestId("toggle-chat").click();
  const text = await ada.getByTestId("chat-message").last().locator(".text").textContent();
  assert.equal(text, "hello from Bob");
  const chats = (await events(ada)).filter((e) => e.kind === "chat");
  assert.equal(chats.length, 1);
  assert.equal(chats[0].message.from_name, "Bob");
  await screenshot(ada, "04-chat");
  await ada.getByTestId("toggle-chat").click();
  await bob.getByTestId("toggle-chat").click();
});

test("the participant has no moderator controls and the server refuses a forced kick", async () => {
  assert.equal(await ada.getByTestId("meeting").getAttribute("data-moderator"), "true");
  assert.equal(await bob.getByTestId("meeting").getAttribute("data-moderator"), "false");
  // Moderator: whiteboard button, tile menus, room controls. Participant: none of them.
  assert.equal(await ada.getByTestId("toggle-whiteboard").count(), 1);
  assert.equal(await ada.getByTestId("tile-menu").count(), 1);
  assert.equal(await bob.getByTestId("toggle-whiteboard").count(), 0);
  assert.equal(await bob.getByTestId("tile-menu").count(), 0);
  assert.equal(await bob.getByTestId("toggle-record").count(), 0);
  await bob.getByTestId("toggle-participants").click();
  await bob.getByTestId("participants-panel").waitFor();
  assert.equal(await bob.getByTestId("room-controls").count(), 0);
  assert.equal(await bob.getByTestId("kick-participant").count(), 0);
  await bob.getByTestId("toggle-participants").click();

  // Forcing it anyway: the server answers `forbidden` and Ada stays.
  const adaId = await myId(ada);
  await bob.evaluate((id) => window.__convene.conference.send({ type: "kick", participant: id }), adaId);
  await bob.evaluate(() => window.__convene.conference.send({ type: "set_metadata", key: "whiteboard", value: null }));
  await waitInPage(bob, () => (window.__events ?? []).filter((e) => e.kind === "error" && e.code === "forbidden").length >= 2, null, { what: "forbidden errors" });
  await ada.waitForTimeout(500);
  assert.deepEqual((await tileNames(ada)).sort(), ["Ada", "Bob"]);
  assert.equal(await ada.getByTestId("meeting").count(), 1);
});

test("the moderator mutes the participant, who is told", async () => {
  await ada.getByTestId("tile-menu").click();
  await ada.getByRole("menuitem", { name: "Mute" }).click();
  await waitInPage(bob, () => (window.__events ?? []).some((e) => e.kind === "muted" && e.trackKind === "audio"), null, { what: "muted event" });
  await waitInPage(bob, () => document.querySelector('[data-testid="toggle-mic"]')?.getAttribute("aria-pressed") === "false", null, { what: "mic button off" });
  await waitInPage(ada, () => {
    const tile = [...document.querySelectorAll('[data-testid="tile"]')].find((t) => t.dataset.name === "Bob");
    return !!tile?.querySelector(".badge.muted");
  }, null, { what: "muted badge on Bob's tile" });
});

test("a shared screen reaches the other participant and takes the big spot in speaker view", async () => {
  await ada.getByTestId("toggle-screen").click();
  const screenTile = '[data-testid="tile"].screen';
  await waitInPage(bob, (sel) => document.querySelector(sel)?.querySelector("video")?.videoWidth > 0, screenTile, { what: "Ada's screen at Bob" });
  await bob.getByTestId("toggle-view").click();
  await waitInPage(bob, () => !!document.querySelector(".main-tile .tile.screen"), null, { what: "screen in the main spot" });
  await screenshot(bob, "05-screen-share-speaker-view");
  await bob.getByTestId("toggle-view").click();
  await ada.getByTestId("toggle-screen").click();
  await waitInPage(bob, (sel) => !document.querySelector(sel), screenTile, { what: "screen tile gone" });
});

test("a phone-sized screen shows the meeting in one column", async () => {
  const phone = await newParticipant(browser, { viewport: { width: 390, height: 844 } });
  await joinMeeting(phone, server.url, room, "Phone");
  await waitForVideo(phone);
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, "the page scrolls sideways on a phone");
  await screenshot(phone, "06-meeting-phone");
  await phone.getByTestId("leave").click();
  await phone.getByTestId("ended").waitFor();
  await waitInPage(ada, () => document.querySelectorAll('[data-testid="tile"]').length === 2, null, { what: "phone left" });
});
