// A recipient that stops reading: volatile messages to it are dropped, and once too much piles
// up it is disconnected. The sender and the other members are not slowed down.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, connect, roomName, payload, sameBytes, metrics, sum, eventually } from './harness.mjs';

let server;
before(async () => {
  server = await startServer({ max_send_queue: 2000000, rate_limit_per_second: 10000, rate_limit_burst: 10000 });
});
after(async () => { await server.stop(); });

test('a stalled recipient loses volatile messages, then its connection; others keep going', async () => {
  const room = roomName();
  const sender = await connect(server, 'v4/websocket');
  const healthy = await connect(server, 'v3/websocket');
  await sender.join(room);
  await healthy.join(room);

  // A raw client that joins and then never reads again, like a frozen tab.
  const stalled = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
  await new Promise((r) => stalled.on('open', r));
  stalled.send('40');
  stalled.send(`42["join-room","${room}"]`);
  await healthy.next('new-user');
  stalled._socket.pause();

  const m0 = await metrics(server);
  // 300 × 2 × 100 kB = 60 MB for the stalled client: far more than its socket buffers and the
  // 2 MB queue limit. The sender waits for the healthy member each round, so only the stalled
  // client falls behind.
  for (let i = 0; i < 300; i++) {
    sender.emit('server-volatile-broadcast', room, ...payload(100000).args);
    const p = payload(100000);
    sender.emit('server-broadcast', room, ...p.args);
    // Every reliable message reaches the healthy member, in order (volatile ones may be skipped).
    for (;;) {
      const got = await healthy.next('client-broadcast', 20000);
      if (sameBytes(got, p)) break;
    }
  }
  await eventually('slow consumer disconnected', async () =>
    sum(await metrics(server), 'convene_whiteboard_disconnects_total', 'reason="slow_consumer"') >
      sum(m0, 'convene_whiteboard_disconnects_total', 'reason="slow_consumer"'), 20000);
  const m1 = await metrics(server);
  assert.ok(sum(m1, 'convene_whiteboard_volatile_dropped_total') > sum(m0, 'convene_whiteboard_volatile_dropped_total'),
    'volatile messages to the stalled client were dropped first');
  assert.equal(sum(m1, 'convene_whiteboard_room_memberships'), 2, 'the stalled client left the room');
  assert.equal(sender.disconnected || healthy.disconnected, false);
  stalled.terminate();
  sender.close();
  healthy.close();
});
