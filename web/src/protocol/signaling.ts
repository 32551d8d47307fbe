// The signaling transport: one WebSocket to /api/v1/rooms/{room}/ws that reconnects with backoff.
// DOM-free: the socket constructor is injected, so Node tests and browsers use the same code.

import { parseServerMessage, type ClientMessage, type ServerMessage } from "./messages";

/** What this module needs of a WebSocket (the browser's and the `ws` package's both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type SocketFactory = (url: string) => WebSocketLike;

export type TransportState =
  /** First connection attempt under way. */
  | "connecting"
  | "open"
  /** The socket dropped; trying again. */
  | "reconnecting"
  /** Gave up after every retry failed. */
  | "failed"
  /** Closed on purpose (leave, kick, meeting end). */
  | "closed";

/** Delays before each reconnection attempt; after the last one the transport gives up. */
export const DEFAULT_BACKOFF_MS: readonly number[] = [250, 500, 1000, 2000, 4000, 4000, 4000, 4000];

const OPEN = 1;

export interface SignalingOptions {
  url: string;
  createSocket?: SocketFactory;
  backoffMs?: readonly number[];
  /** Injected timers keep tests deterministic. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/**
 * A reconnecting JSON message channel. `onOpen` fires on every (re)connection so the owner can send
 * `join` or `resume`; messages are delivered in order.
 */
export class SignalingTransport {
  private socket: WebSocketLike | null = null;
  private attempt = 0;
  private timer: unknown = null;
  private everOpened = false;
  private _state: TransportState = "connecting";
  private readonly createSocket: SocketFactory;
  private readonly backoff: readonly number[];
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  onMessage: (msg: ServerMessage) => void = () => {};
  onOpen: (reconnect: boolean) => void = () => {};
  onState: (state: TransportState, detail?: string) => void = () => {};

  constructor(private readonly options: SignalingOptions) {
    this.createSocket =
      options.createSocket ?? ((url) => new (globalThis as unknown as { WebSocket: new (u: string) => WebSocketLike }).WebSocket(url));
    this.backoff = options.backoffMs ?? DEFAULT_BACKOFF_MS;
    this.setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  }

  get state(): TransportState {
    return this._state;
  }

  connect(): void {
    if (this._state === "closed") return;
    this.open();
  }

  /** Sends if connected; returns false when the message could not be sent. */
  send(msg: ClientMessage): boolean {
    if (!this.socket || this.socket.readyState !== OPEN) return false;
    this.socket.send(JSON.stringify(msg));
    return true;
  }

  /** Closes for good: no reconnection follows. */
  close(): void {
    this.setState("closed");
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.onclose = null;
      socket.onmessage = null;
      socket.close(1000, "bye");
    }
  }

  private open(): void {
    let socket: WebSocketLike;
    try {
      socket = this.createSocket(this.options.url);
    } catch (e) {
      this.scheduleRetry(String(e));
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      const reconnect = this.everOpened;
      this.everOpened = true;
      this.attempt = 0;
      this.setState("open");
      this.onOpen(reconnect);
    };
    socket.onmessage = (ev) => {
      if (typeof ev.data !== "string") return;
      const msg = parseServerMessage(ev.data);
      if (msg) this.onMessage(msg);
    };
    socket.onerror = () => {
      // The close event follows and carries what there is to know.
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this._state === "closed") return;
      this.scheduleRetry(ev.reason || `connection closed (code ${ev.code})`);
    };
  }

  private scheduleRetry(detail: string): void {
    if (this.attempt >= this.backoff.length) {
      this.setState("failed", detail);
      return;
    }
    const delay = this.backoff[this.attempt];
    this.attempt += 1;
    this.setState(this.everOpened ? "reconnecting" : "connecting", detail);
    this.timer = this.setTimer(() => {
      this.timer = null;
      if (this._state !== "closed") this.open();
    }, delay);
  }

  private setState(state: TransportState, detail?: string): void {
    if (state === this._state && detail === undefined) return;
    this._state = state;
    this.onState(state, detail);
  }
}

/** The signaling URL for `room` on the page's origin (ws: for http:, wss: for https:). */
export function signalingUrl(origin: string, room: string, params: { name?: string; jwt?: string } = {}): string {
  const url = new URL(`/api/v1/rooms/${encodeURIComponent(room)}/ws`, origin);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (params.jwt) url.searchParams.set("jwt", params.jwt);
  if (params.name) url.searchParams.set("name", params.name);
  return url.toString();
}
