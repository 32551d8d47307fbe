// user-follow / user-follow-room-change / broadcast-unfollow, and the follow-room exception
// to the membership rule.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, connect, roomName, payload, sameBytes, sleep } from './harness.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

const follow = (c, target, action) =>
  c.emit('user-follow', { userToFollow: { socketId: target.id, username: 'x' }, action });

for (const [fk, tk] of [['v4/websocket', 'v3/websocket'], ['v3/websocket', 'v4/polling'], ['v4/upgrade', 'v4/websocket']]) {
  test(`${fk} follows ${tk}: followed user learns its followers and can send its bounds`, async () => {
    const room = roomName();
    const leader = await connect(server, tk);
    const follower = await connect(server, fk);
    const other = await connect(server, 'v4/websocket');
    for (const c of [leader, follower, other]) await c.join(room);

    follow(follower, leader, 'FOLLOW');
    assert.deepEqual(await leader.next('user-follow-room-change'), [[follower.id]]);

    // The leader is not in follow@<its id>, yet its viewport must reach its followers only.
    const p = payload(48);
    leader.emit('server-volatile-broadcast', `follow@${leader.id}`, ...p.args);
    assert.ok(sameBytes(await follower.next('client-broadcast'), p));
    await sleep(100);
    assert.equal(other.pending('client-broadcast').length, 0, 'non-followers get no bounds');

    follow(follower, leader, 'UNFOLLOW');
    assert.deepEqual(await leader.next('user-follow-room-change'), [[]]);
    leader.emit('server-broadcast', `follow@${leader.id}`, ...payload(8).args);
    await sleep(100);
    assert.equal(follower.pending('client-broadcast').length, 0, 'unfollowed: no more bounds');
    for (const c of [leader, follower, other]) c.close();
  });
}

test('last follower disconnecting sends broadcast-unfollow to the followed user', async () => {
  const leader = await connect(server, 'v3/websocket');
  const f1 = await connect(server, 'v4/websocket');
  const f2 = await connect(server, 'v3/polling');
  follow(f1, leader, 'FOLLOW');
  assert.deepEqual(await leader.next('user-follow-room-change'), [[f1.id]]);
  follow(f2, leader, 'FOLLOW');
  assert.deepEqual(await leader.next('user-follow-room-change'), [[f1.id, f2.id]]);
  f1.close();
  await sleep(200);
  assert.equal(leader.pending('broadcast-unfollow').length, 0, 'one follower is left');
  f2.close();
  await leader.next('broadcast-unfollow');
  leader.close();
});

test("a socket cannot broadcast into someone else's follow room", async () => {
  const leader = await connect(server, 'v4/websocket');
  const follower = await connect(server, 'v4/websocket');
  const intruder = await connect(server, 'v4/websocket');
  follow(follower, leader, 'FOLLOW');
  await leader.next('user-follow-room-change');
  intruder.emit('server-broadcast', `follow@${leader.id}`, ...payload(16).args);
  await sleep(150);
  assert.equal(follower.pending('client-broadcast').length, 0);
  for (const c of [leader, follower, intruder]) c.close();
});
