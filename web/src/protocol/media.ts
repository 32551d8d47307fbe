// The media side of a participant: one RTCPeerConnection to the server, the client's sending
// transceivers (microphone, camera, screen) and the negotiation rules of docs/protocol.md.
//
// Rules that keep negotiation safe against crossing offers (glare):
// - every SDP step runs through one serial queue and is awaited;
// - a client offer is "outstanding" from the moment it is asked for until the server's answer (or
//   error) arrives on the signaling channel;
// - a server offer that arrives while a client offer is outstanding was sent before the server saw
//   ours, so it is dropped: the server drops its own offer when it accepts ours and offers again
//   afterwards (the client is the impolite peer). Messages on the socket are ordered, so an offer
//   that arrives after our answer is a fresh one and is answered.
// Muting never renegotiates: it swaps tracks with replaceTrack or toggles track.enabled.
//
// Simulcast: the camera is sent as three encodings (a quarter, half and full resolution) and the
// server forwards to each receiver the one that fits the tile it is shown in and its bandwidth. The
// client reports its tile sizes (`tile_sizes`, debounced). A shared screen is one encoding that
// keeps its resolution when bandwidth is short (content hint "detail"): text must stay legible.

import type { ClientMessage, IceServer, MediaSource, ServerMessage, TileSize } from "./messages";
import { SerialQueue } from "./serial";

export interface MediaSessionOptions {
  send: (msg: ClientMessage) => boolean;
  /** TURN servers from the last `welcome`, so media gets through when the direct path is blocked. */
  iceServers?: IceServer[];
  createPeerConnection?: (config: RTCConfiguration) => RTCPeerConnection;
  /** How long to wait for the server's answer before rolling back. */
  answerTimeoutMs?: number;
  onRemoteTrack?: (mid: string, track: MediaStreamTrack) => void;
  /** Send the camera as simulcast ([`CAMERA_ENCODINGS`]); default true. */
  simulcast?: boolean;
  /** Quiet time before changed tile sizes are sent. */
  tileSizeDebounceMs?: number;
  onConnectionState?: (state: RTCPeerConnectionState) => void;
  onError?: (message: string) => void;
}

interface PendingAnswer {
  resolve: (sdp: string) => void;
  reject: (err: Error) => void;
}

/**
 * The camera's simulcast encodings, lowest first (Chromium scales them as listed; the server ranks
 * layers by what arrives, not by these names). Chromium sends fewer layers for small inputs: all
 * three need about 960x540 or more.
 */
export const CAMERA_ENCODINGS: RTCRtpEncodingParameters[] = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/** Limits the server puts on `tile_sizes` (docs/protocol.md). */
const MAX_TILES = 64;
const MAX_SIDE = 16384;

const SOURCE_KIND: Record<MediaSource, "audio" | "video"> = {
  microphone: "audio",
  camera: "video",
  screen: "video",
};

export class MediaSession {
  readonly pc: RTCPeerConnection;
  private readonly queue = new SerialQueue();
  private readonly transceivers = new Map<MediaSource, RTCRtpTransceiver>();
  private readonly remote = new Map<string, MediaStreamTrack>();
  private pendingAnswer: PendingAnswer | null = null;
  /** Server offers dropped because they crossed one of ours (diagnostics). */
  droppedServerOffers = 0;
  /** Client offers asked for and not yet answered (queued ones included). */
  private outstandingOffers = 0;
  private closed = false;
  private readonly answerTimeoutMs: number;
  /** Receiving mid → size it is shown at; what was last sent; the pending send. */
  private readonly tileSizes = new Map<string, TileSize>();
  private tileSizesSent = "";
  private tileTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: MediaSessionOptions) {
    const config: RTCConfiguration = { bundlePolicy: "max-bundle", iceServers: options.iceServers ?? [] };
    this.pc = options.createPeerConnection ? options.createPeerConnection(config) : new RTCPeerConnection(config);
    this.answerTimeoutMs = options.answerTimeoutMs ?? 15000;
    this.pc.ontrack = (ev) => {
      const mid = ev.transceiver.mid;
      if (mid === null) return;
      this.remote.set(mid, ev.track);
      this.options.onRemoteTrack?.(mid, ev.track);
    };
    this.pc.onconnectionstatechange = () => this.options.onConnectionState?.(this.pc.connectionState);
  }

  /**
   * Replaces the TURN credentials (a resumed `welcome` brings fresh ones, the old ones expire); they
   * are used by the next ICE restart. The running connection keeps its candidates.
   */
  setIceServers(iceServers: IceServer[]): void {
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    } catch (e) {
      this.options.onError?.(`cannot update TURN servers: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /**
   * The size in device pixels at which the video arriving on `mid` is drawn, or null when it is no
   * longer shown. The full map goes to the server once sizes stop changing for a moment.
   */
  setTileSize(mid: string, size: TileSize | null): void {
    if (size) {
      const clamp = (n: number) => Math.max(0, Math.min(MAX_SIDE, Math.round(n)));
      this.tileSizes.set(mid, { width: clamp(size.width), height: clamp(size.height) });
    } else {
      this.tileSizes.delete(mid);
    }
    clearTimeout(this.tileTimer);
    this.tileTimer = setTimeout(() => this.sendTileSizes(), this.options.tileSizeDebounceMs ?? 250);
  }

  private sendTileSizes(): void {
    if (this.closed) return;
    const entries = [...this.tileSizes.entries()].slice(0, MAX_TILES);
    const tiles: Record<string, TileSize> = Object.fromEntries(entries);
    const text = JSON.stringify(tiles);
    if (text === this.tileSizesSent) return;
    if (this.options.send({ type: "tile_sizes", tiles })) this.tileSizesSent = text;
  }

  /** The track arriving on a receiving mid, if any. */
  remoteTrack(mid: string): MediaStreamTrack | undefined {
    return this.remote.get(mid);
  }

  /**
   * Adds the microphone and camera transceivers (even without a track, so a later unmute is a
   * replaceTrack) and makes the first offer.
   */
  start(microphone: MediaStreamTrack | null, camera: MediaStreamTrack | null): Promise<void> {
    this.addSender("microphone", microphone);
    this.addSender("camera", camera);
    return this.negotiate();
  }

  /** Swaps what a source sends, without renegotiation. `null` sends nothing. */
  async replaceTrack(source: MediaSource, track: MediaStreamTrack | null): Promise<void> {
    const transceiver = this.transceivers.get(source);
    if (!transceiver) return;
    await transceiver.sender.replaceTrack(track);
  }

  /** Starts or stops sending a screen. Starting the first time adds a transceiver and renegotiates. */
  async setScreen(track: MediaStreamTrack | null): Promise<void> {
    const existing = this.transceivers.get("screen");
    if (track) {
      // Resolution over frame rate when bandwidth or CPU is short.
      if (track.kind === "video") track.contentHint = "detail";
      if (existing) {
        await existing.sender.replaceTrack(track);
        if (existing.direction !== "sendonly") {
          existing.direction = "sendonly";
          await this.negotiate();
        }
      } else {
        this.addSender("screen", track);
        await this.negotiate();
      }
    } else if (existing && existing.direction !== "inactive") {
      await existing.sender.replaceTrack(null);
      existing.direction = "inactive";
      await this.negotiate();
    }
  }

  /** Handles the media messages of the signaling channel; returns false for other messages. */
  handle(msg: ServerMessage): boolean {
    switch (msg.type) {
      case "sdp_answer":
        if (this.pendingAnswer) {
          this.pendingAnswer.resolve(msg.sdp);
          this.pendingAnswer = null;
        }
        return true;
      case "sdp_offer":
        if (this.outstandingOffers > 0) {
          // Glare: our offer wins; the server re-offers after answering it.
          this.droppedServerOffers += 1;
          return true;
        }
        void this.queue.run(() => this.answerServerOffer(msg.sdp)).catch((e) => this.fail(`could not accept the server's offer: ${e}`));
        return true;
      case "media_error":
        if (this.pendingAnswer) {
          this.pendingAnswer.reject(new Error(`${msg.code}: ${msg.message}`));
          this.pendingAnswer = null;
        } else {
          this.fail(`${msg.code}: ${msg.message}`);
        }
        return true;
      default:
        return false;
    }
  }

  /** Closes the connection; local tracks are stopped too unless `keepTracks` (a restart reuses them). */
  close(options: { keepTracks?: boolean } = {}): void {
    this.closed = true;
    clearTimeout(this.tileTimer);
    this.pendingAnswer?.reject(new Error("closed"));
    this.pendingAnswer = null;
    if (!options.keepTracks) for (const t of this.transceivers.values()) t.sender.track?.stop();
    this.pc.close();
  }

  private addSender(source: MediaSource, track: MediaStreamTrack | null): void {
    const init: RTCRtpTransceiverInit = { direction: "sendonly" };
    if (source === "camera" && (this.options.simulcast ?? true)) {
      init.sendEncodings = CAMERA_ENCODINGS.map((e) => ({ ...e }));
    }
    const transceiver = this.pc.addTransceiver(track ?? SOURCE_KIND[source], init);
    this.transceivers.set(source, transceiver);
  }

  /** Client-initiated negotiation, queued behind every other SDP step. */
  private negotiate(): Promise<void> {
    this.outstandingOffers += 1;
    let settled = false;
    const settle = () => {
      if (!settled) {
        settled = true;
        this.outstandingOffers -= 1;
      }
    };
    return this.queue.run(async () => {
      try {
        await this.offerAndApplyAnswer(settle);
      } finally {
        settle();
      }
    });
  }

  private async offerAndApplyAnswer(settle: () => void): Promise<void> {
    if (this.closed) return;
    const offer = await this.pc.createOffer();
    await this.pc.setLocalDescription(offer);
    const answer = new Promise<string>((resolve, reject) => {
      // Settled synchronously when the answer message arrives, so an offer right behind it counts as fresh.
      this.pendingAnswer = {
        resolve: (sdp) => {
          settle();
          resolve(sdp);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
    });
    const sdp = this.pc.localDescription?.sdp ?? offer.sdp ?? "";
    if (!this.options.send({ type: "sdp_offer", sdp, sources: this.sources() })) {
      this.pendingAnswer = null;
      await this.pc.setLocalDescription({ type: "rollback" });
      throw new Error("signaling connection is not open");
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("no answer from the server")), this.answerTimeoutMs);
    });
    try {
      const answerSdp = await Promise.race([answer, timeout]);
      await this.pc.setRemoteDescription({ type: "answer", sdp: answerSdp });
    } catch (e) {
      this.pendingAnswer = null;
      if (!this.closed && this.pc.signalingState === "have-local-offer") {
        await this.pc.setLocalDescription({ type: "rollback" });
      }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  private async answerServerOffer(sdp: string): Promise<void> {
    if (this.closed) return;
    await this.pc.setRemoteDescription({ type: "offer", sdp });
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    this.options.send({ type: "sdp_answer", sdp: this.pc.localDescription?.sdp ?? answer.sdp ?? "" });
  }

  /** mid → source for every transceiver that is currently sending. */
  private sources(): Record<string, MediaSource> {
    const out: Record<string, MediaSource> = {};
    for (const [source, t] of this.transceivers) {
      if (t.mid !== null && (t.direction === "sendonly" || t.direction === "sendrecv")) out[t.mid] = source;
    }
    return out;
  }

  private fail(message: string): void {
    if (!this.closed) this.options.onError?.(message);
  }
}
