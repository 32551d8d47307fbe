// The signaling transport against a real WebSocket server on 127.0.0.1: JSON framing, reconnection
// with backoff after the server drops the socket, giving up, and closing for good.

import { afterEach, describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { SignalingTransport, signalingUrl, type TransportState, type WebSocketLike } from "./signaling";
import type { ServerMessage } from "./messages";

const servers: WebSocketServer[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) {
    for (const c of s.clients) c.terminate();
    await new Promise((r) => s.close(r));
  }
});

async function listen(): Promise<{ server: WebSocketServer; url: string }> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  servers.push(server);
  await new Promise((r) => server.once("listening", r));
  const { port } = server.address() as { port: number };
  return { server, url: `ws://127.0.0.1:${port}/api/v1/rooms/r/ws` };
}

const createSocket = (url: string) => new WebSocket(url) as unknown as WebSocketLike;

function until(cond: () => boolean, ms = 3000): Promise<void> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const poll = () => {
      if (cond()) resolve();
      else if (Date.now() - start > ms) reject(new Error("timed out"));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

describe("SignalingTransport", () => {
  it("exchanges JSON messages and ignores unknown ones", async () => {
    const { server, url } = await listen();
    const received: string[] = [];
    server.on("connection", (ws) => {
      ws.on("message", (data) => {
        received.push(String(data));
        ws.send('{"type":"teleport"}');
        ws.send(JSON.stringify({ type: "lobby_waiting" }));
      });
    });
    const t = new SignalingTransport({ url, createSocket });
    const got: ServerMessage[] = [];
    t.onMessage = (m) => got.push(m);
    t.onOpen = () => t.send({ type: "raise_hand", raised: true });
    t.connect();
    await until(() => got.length === 1);
    expect(JSON.parse(received[0])).toEqual({ type: "raise_hand", raised: true });
    expect(got).toEqual([{ type: "lobby_waiting" }]);
    t.close();
  });

  it("reconnects after the server drops it, reporting reconnecting then open", async () => {
    const { server, url } = await listen();
    let connections = 0;
    server.on("connection", (ws) => {
      connections += 1;
      if (connections === 1) setTimeout(() => ws.terminate(), 10);
    });
    const t = new SignalingTransport({ url, createSocket, backoffMs: [20, 20] });
    const states: TransportState[] = [];
    const opens: boolean[] = [];
    t.onState = (s) => states.push(s);
    t.onOpen = (reconnect) => opens.push(reconnect);
    t.connect();
    await until(() => opens.length === 2);
    expect(opens).toEqual([false, true]);
    expect(states).toEqual(["open", "reconnecting", "open"]);
    t.close();
    expect(t.state).toBe("closed");
  });

  it("gives up after the last backoff step", async () => {
    const { server, url } = await listen();
    await new Promise((r) => server.close(r));
    servers.splice(servers.indexOf(server), 1);
    const t = new SignalingTransport({ url, createSocket, backoffMs: [10, 10] });
    const details: (string | undefined)[] = [];
    t.onState = (s, d) => {
      if (s === "failed") details.push(d);
    };
    t.connect();
    await until(() => t.state === "failed");
    expect(details).toHaveLength(1);
    expect(t.send({ type: "leave" })).toBe(false);
  });

  it("does not reconnect after close()", async () => {
    const { server, url } = await listen();
    let connections = 0;
    server.on("connection", () => (connections += 1));
    const t = new SignalingTransport({ url, createSocket, backoffMs: [5] });
    t.onOpen = () => t.close();
    t.connect();
    await until(() => t.state === "closed");
    await new Promise((r) => setTimeout(r, 50));
    expect(connections).toBe(1);
  });
});

describe("signalingUrl", () => {
  it("uses ws/wss matching the page and encodes parameters", () => {
    expect(signalingUrl("http://localhost:8080", "standup", { name: "Ada L" })).toBe(
      "ws://localhost:8080/api/v1/rooms/standup/ws?name=Ada+L",
    );
    expect(signalingUrl("https://meet.example.org", "a.b", { jwt: "x.y.z" })).toBe(
      "wss://meet.example.org/api/v1/rooms/a.b/ws?jwt=x.y.z",
    );
  });
});
