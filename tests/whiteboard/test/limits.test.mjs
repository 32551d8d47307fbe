// Limits: room-full, oversized messages, floods. Each hurts only the offending client.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, roomName, payload, sameBytes, sleep, metrics, sum, eventually } from './harness.mjs';

const REJECTED = 'convene_whiteboard_rejected_messages_total';
let server;
before(async () => {
  server = await startServer({
    max_users_per_room: 3,
    max_message_size: 100000,
    rate_limit_per_second: 50,
    rate_limit_burst: 100,
  });
});
after(async () => { await server.stop(); });

for (const k of ['v4/websocket', 'v3/websocket', 'v4/polling']) {
  test(`${k}: the joiner over the room limit gets room-full and is disconnected`, async () => {
    const room = roomName();
    const a = await connect(server, 'v4/websocket');
    const b = await connect(server, 'v3/websocket');
    const third = await connect(server, 'v4/polling');
    for (const m of [a, b, third]) await m.join(room);
    await a.next('new-user');
    await a.next('new-user');
    const c = await connect(server, k);
    c.emit('join-room', room);
    await c.next('room-full');
    await c.next('disconnect');
    await sleep(100);
    assert.equal(a.pending('new-user').length, 0, 'members are not told about the rejected joiner');
    const p = payload(16);
    a.emit('server-broadcast', room, ...p.args);
    assert.ok(sameBytes(await b.next('client-broadcast'), p), 'the room still works');
    for (const m of [a, b, third]) m.close();
  });
}

for (const k of ['v4/websocket', 'v3/websocket', 'v4/polling', 'v3/polling']) {
  test(`${k}: an oversized message disconnects only its sender`, async () => {
    const room = roomName();
    const big = await connect(server, k);
    const a = await connect(server, 'v4/websocket');
    const b = await connect(server, 'v3/websocket');
    for (const c of [big, a, b]) await c.join(room);
    const before = sum(await metrics(server), REJECTED, 'reason="oversized"');

    big.emit('server-broadcast', room, ...payload(150000).args);
    await big.next('disconnect');
    await eventually('oversized counted', async () =>
      sum(await metrics(server), REJECTED, 'reason="oversized"') > before);
    await sleep(100);
    assert.equal(a.pending('client-broadcast').length + b.pending('client-broadcast').length, 0);

    const p = payload(1000);
    a.emit('server-broadcast', room, ...p.args);
    assert.ok(sameBytes(await b.next('client-broadcast'), p), 'others keep relaying');
    assert.equal(a.disconnected || b.disconnected, false);
    a.close();
    b.close();
  });
}

test('a flood is cut to the rate limit; other rooms are unaffected', async () => {
  const room = roomName();
  const flooder = await connect(server, 'v4/websocket');
  const sink = await connect(server, 'v4/websocket');
  await flooder.join(room);
  await sink.join(room);
  const quietRoom = roomName();
  const q1 = await connect(server, 'v3/websocket');
  const q2 = await connect(server, 'v4/websocket');
  await q1.join(quietRoom);
  await q2.join(quietRoom);

  for (let n = 0; n < 3000; n++) flooder.emit('server-volatile-broadcast', room, ...payload(16).args);
  const p = payload(16);
  q1.emit('server-broadcast', quietRoom, ...p.args);
  assert.ok(sameBytes(await q2.next('client-broadcast'), p));
  await eventually('rate limited counted', async () =>
    sum(await metrics(server), REJECTED, 'reason="rate_limited"') > 0);
  await sleep(500);
  const delivered = sink.pending('client-broadcast').length;
  assert.ok(delivered >= 100 && delivered < 1000, `delivered ${delivered} of 3000`);
  assert.ok(server.alive());
  for (const c of [flooder, sink, q1, q2]) c.close();
});
