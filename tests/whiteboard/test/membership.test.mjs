// Convene's membership rule: no broadcast into a room the sender has not joined.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, roomName, payload, sleep, metrics, sum, eventually } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

test('broadcast into a room the sender is not in is dropped and counted', async () => {
  const room = roomName();
  const member = await connect(server, 'v4/websocket');
  await member.join(room);
  const outsider = await connect(server, 'v3/websocket');
  await outsider.join(roomName());
  const before = sum(await metrics(server), 'convene_whiteboard_rejected_messages_total', 'reason="not_member"');

  outsider.emit('server-broadcast', room, ...payload(32).args);
  outsider.emit('server-volatile-broadcast', room, ...payload(32).args);
  // A socket id is not a room: a direct message to another socket is refused too.
  outsider.emit('server-broadcast', member.id, ...payload(32).args);
  await eventually('not_member rejections', async () =>
    sum(await metrics(server), 'convene_whiteboard_rejected_messages_total', 'reason="not_member"') - before === 3);
  await sleep(100);
  assert.equal(member.pending('client-broadcast').length, 0);
  assert.equal(outsider.connected === false, false);
  member.close();
  outsider.close();
});

test('the refused sender stays connected and can still use its own room', async () => {
  const mine = roomName();
  const a = await connect(server, 'v4/polling');
  const b = await connect(server, 'v4/websocket');
  await a.join(mine);
  await b.join(mine);
  a.emit('server-broadcast', roomName(), ...payload(8).args);
  const p = payload(8);
  a.emit('server-broadcast', mine, ...p.args);
  await b.next('client-broadcast');
  a.close();
  b.close();
});
