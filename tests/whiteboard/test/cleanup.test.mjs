// Nothing is left behind: after every client leaves, the rooms, follow rooms, memberships and
// socket gauges are back to zero, whether clients close cleanly or just vanish.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, connect, KINDS, roomName, metrics, sum, eventually } from './harness.mjs';

let server;
before(async () => { server = await startServer({ ping_interval: '500ms', ping_timeout: '500ms' }); });
after(async () => { await server.stop(); });

const gauges = async () => {
  const m = await metrics(server);
  return {
    sockets: sum(m, 'convene_whiteboard_sockets'),
    rooms: sum(m, 'convene_whiteboard_rooms'),
    follow_rooms: sum(m, 'convene_whiteboard_follow_rooms'),
    memberships: sum(m, 'convene_whiteboard_room_memberships'),
  };
};
const zero = { sockets: 0, rooms: 0, follow_rooms: 0, memberships: 0 };

test('rooms and follow rooms are gone after everyone disconnects', async () => {
  const rooms = [roomName(), roomName(), roomName()];
  const clients = [];
  for (let i = 0; i < 15; i++) {
    const c = await connect(server, KINDS[i % KINDS.length]);
    await c.join(rooms[i % 3]);
    clients.push(c);
  }
  for (let i = 1; i < 15; i++) {
    clients[i].emit('user-follow', { userToFollow: { socketId: clients[0].id, username: 'u' }, action: 'FOLLOW' });
  }
  await eventually('follow room complete', async () => (await gauges()).memberships === 29);
  assert.deepEqual(await gauges(), { sockets: 15, rooms: 3, follow_rooms: 1, memberships: 29 });
  const m = await metrics(server);
  assert.ok(sum(m, 'convene_whiteboard_sockets', 'protocol="v3"') >= 1);
  assert.ok(sum(m, 'convene_whiteboard_sockets', 'transport="polling"') >= 1);
  for (const c of clients) c.close();
  await eventually('all gauges at zero', async () => JSON.stringify(await gauges()) === JSON.stringify(zero));
});

test('clients that vanish without closing are cleaned up by the heartbeat', async () => {
  const room = roomName();
  const sockets = [];
  for (const eio of [3, 4]) {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=${eio}&transport=websocket`);
    await new Promise((r) => ws.on('open', r));
    if (eio === 4) ws.send('40');
    ws.send(`42["join-room","${room}"]`);
    // Never answer pings and never close: like a laptop lid shut.
    ws.pause();
    sockets.push(ws);
  }
  await eventually('joined', async () => (await gauges()).memberships === 2);
  await eventually('heartbeat timeout clean-up', async () =>
    JSON.stringify(await gauges()) === JSON.stringify(zero), 10000);
  for (const ws of sockets) ws.terminate();
});

test('a thousand idle connections come and go without leaks', async () => {
  // Default heartbeat here: with 1000 sockets on a busy machine, this process could miss a
  // 500 ms ping deadline and the server would rightly drop some of them.
  await server.stop();
  server = await startServer();
  const sockets = [];
  for (let i = 0; i < 1000; i++) {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
    ws.on('message', (d) => { if (d.toString() === '2') ws.send('3'); });
    ws.on('open', () => ws.send('40'));
    sockets.push(ws);
  }
  await eventually('1000 sockets', async () => (await gauges()).sockets === 1000, 20000);
  for (const ws of sockets) ws.terminate();
  await eventually('all gauges at zero', async () => JSON.stringify(await gauges()) === JSON.stringify(zero), 10000);
});
