// join-room, first-in-room, new-user and room-user-change, for every client kind and mixed rooms.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, KINDS, roomName, sleep } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

for (const k of KINDS) {
  test(`${k.name}: first joiner gets first-in-room, second triggers new-user`, async () => {
    const room = roomName();
    const a = await connect(server, k);
    assert.match(a.id, /^[\w-]+$/);
    assert.deepEqual(await a.join(room), [a.id]);
    await a.next('first-in-room');

    const b = await connect(server, k);
    assert.deepEqual(await b.join(room), [a.id, b.id]);
    assert.deepEqual(await a.next('new-user'), [b.id]);
    assert.deepEqual(await a.next('room-user-change'), [[a.id, b.id]]);
    await sleep(100);
    assert.equal(b.pending('first-in-room').length, 0, 'second joiner must not get first-in-room');
    assert.equal(b.pending('new-user').length, 0, 'the joiner is not told about itself');

    b.close();
    assert.deepEqual(await a.next('room-user-change'), [[a.id]]);
    a.close();
  });
}

test('v3 and v4 clients share a room; ids are the ones the clients know', async () => {
  const room = roomName();
  const clients = [];
  for (const k of KINDS) clients.push(await connect(server, k));
  const ids = [];
  for (const c of clients) {
    ids.push(c.id);
    assert.deepEqual(await c.join(room), ids);
  }
  // Every earlier member saw every later joiner, in order.
  for (let i = 0; i < clients.length; i++) {
    for (let j = i + 1; j < clients.length; j++) {
      assert.deepEqual(await clients[i].next('new-user'), [ids[j]]);
    }
  }
  const ids_ = new Set(ids);
  assert.equal(ids_.size, ids.length, 'socket ids are unique');
  for (const c of clients) c.close();
});

test('v3 socket id equals the Engine.IO session id', async () => {
  const c = await connect(server, 'v3/websocket');
  assert.equal(c.id, c.socket.io.engine.id);
  c.close();
});
