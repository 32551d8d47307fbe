// server-broadcast and server-volatile-broadcast: binary payloads arrive byte-identical at every
// other member, whatever library version and transport sender and receiver use.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, KINDS, roomName, payload, sameBytes, sleep } from './harness.mjs';

let server;
let room;
let clients;
let outsider;
before(async () => {
  server = await startServer();
  room = roomName();
  clients = [];
  for (const k of KINDS) {
    const c = await connect(server, k);
    await c.join(room);
    clients.push(c);
  }
  outsider = await connect(server, 'v4/websocket');
  await outsider.join(roomName());
});
after(async () => {
  for (const c of clients) c.close();
  outsider.close();
  await server.stop();
});

for (const event of ['server-broadcast', 'server-volatile-broadcast']) {
  for (const [i, k] of KINDS.entries()) {
    test(`${event} from ${k.name} reaches every other kind byte-identical`, async () => {
      const sender = clients[i];
      for (const size of [1, 1024, 200 * 1024]) {
        const p = payload(size);
        sender.emit(event, room, ...p.args);
        for (const c of clients) {
          if (c === sender) continue;
          const got = await c.next('client-broadcast');
          assert.ok(sameBytes(got, p), `${c.kind.name} got different bytes (size ${size})`);
        }
      }
      await sleep(100);
      assert.equal(sender.pending('client-broadcast').length, 0, 'the sender does not get its own broadcast');
      assert.equal(outsider.pending('client-broadcast').length, 0, 'other rooms get nothing');
    });
  }
}

test('a burst of broadcasts arrives complete and in order', async () => {
  const [sender, ...receivers] = clients;
  const sent = [];
  for (let n = 0; n < 50; n++) {
    const p = payload(64 + n);
    sent.push(p);
    sender.emit('server-broadcast', room, ...p.args);
  }
  for (const c of receivers) {
    for (const p of sent) {
      assert.ok(sameBytes(await c.next('client-broadcast'), p), `${c.kind.name}: out of order or altered`);
    }
  }
});
