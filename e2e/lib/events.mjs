// Records a page's conference events (toasts are fleeting; tests read this list instead).

export async function recordEvents(page) {
  await page.evaluate(() => {
    window.__events = [];
    window.__convene.conference.onEvent((e) => window.__events.push(e));
  });
}

export async function events(page) {
  return page.evaluate(() => window.__events ?? []);
}

/** Our participant id, once joined. */
export async function myId(page) {
  return page.evaluate(() => window.__convene.conference.getSnapshot().room.you);
}
