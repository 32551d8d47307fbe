// Malformed packets and unknown events over a raw WebSocket: the server stays up and other
// clients keep working.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, connect, roomName, payload, sameBytes, metrics, sum, eventually } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

function raw(eio = 4) {
  const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=${eio}&transport=websocket`);
  const frames = [];
  ws.on('message', (data, isBinary) => frames.push(isBinary ? data : data.toString()));
  const opened = new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  const closed = new Promise((resolve) => ws.on('close', resolve));
  return { ws, frames, opened, closed };
}

async function stillWorks() {
  const room = roomName();
  const a = await connect(server, 'v4/websocket');
  const b = await connect(server, 'v3/websocket');
  await a.join(room);
  await b.join(room);
  const p = payload(100);
  a.emit('server-broadcast', room, ...p.args);
  assert.ok(sameBytes(await b.next('client-broadcast'), p));
  a.close();
  b.close();
}

const GARBAGE = [
  'hello', '', '4', '42', '42[', '42{}', '42["join-room"]', '42["join-room",{"a":1}]',
  '42["server-broadcast"]', '42["server-broadcast",1,2,3]', '42["user-follow","x"]',
  '42["user-follow",{"userToFollow":{},"action":"FOLLOW"}]', '4299999999999999999999["x"]',
  '451-["server-broadcast","r",{"_placeholder":true,"num":7}]', '4599999999999999-["x"]',
  '42/other,["join-room","r"]', '9', '6', '\u0000\u0001', '42["__proto__"]',
];

for (const [i, text] of GARBAGE.entries()) {
  test(`garbage #${i} ${JSON.stringify(text)} does not hurt the server`, async () => {
    const c = raw();
    await c.opened;
    c.ws.send('40');
    c.ws.send(text);
    await Promise.race([c.closed, new Promise((r) => setTimeout(r, 200))]);
    c.ws.terminate();
    await stillWorks();
  });
}

test('unknown events are dropped and counted, the connection stays', async () => {
  const before = sum(await metrics(server), 'convene_whiteboard_rejected_messages_total', 'reason="unknown_event"');
  const a = await connect(server, 'v4/websocket');
  a.emit('no-such-event', 'x');
  a.emit('client-broadcast', 'x');
  await eventually('unknown_event counted', async () =>
    sum(await metrics(server), 'convene_whiteboard_rejected_messages_total', 'reason="unknown_event"') - before === 2);
  const room = roomName();
  assert.deepEqual(await a.join(room), [a.id]);
  a.close();
});

test('binary frames without a header and unsolicited attachments do not hurt the server', async () => {
  for (const eio of [3, 4]) {
    const c = raw(eio);
    await c.opened;
    if (eio === 4) c.ws.send('40');
    c.ws.send(Buffer.from([4, 1, 2, 3]));
    c.ws.send(Buffer.alloc(0));
    c.ws.send('452-["server-broadcast","r",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]');
    c.ws.send('42["join-room","r"]');
    await Promise.race([c.closed, new Promise((r) => setTimeout(r, 200))]);
    c.ws.terminate();
  }
  await stillWorks();
});
