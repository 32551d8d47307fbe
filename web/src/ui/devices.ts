// Local devices: opening the microphone and camera one at a time (so one refusal does not cost the
// other), listing devices, and remembering choices and names in localStorage.

export interface DeviceLists {
  microphones: MediaDeviceInfo[];
  cameras: MediaDeviceInfo[];
  speakers: MediaDeviceInfo[];
}

export type DeviceResult = { track: MediaStreamTrack; error: null } | { track: null; error: string };

function describe(e: unknown): string {
  if (e instanceof DOMException) {
    if (e.name === "NotAllowedError") return "permission denied";
    if (e.name === "NotFoundError" || e.name === "OverconstrainedError") return "no device found";
    if (e.name === "NotReadableError") return "the device is in use by another program";
    return e.message || e.name;
  }
  return String(e);
}

const hasMediaDevices = () => typeof navigator !== "undefined" && !!navigator.mediaDevices?.getUserMedia;

export async function openMicrophone(deviceId?: string): Promise<DeviceResult> {
  if (!hasMediaDevices()) return { track: null, error: "this page cannot use devices (needs https or localhost)" };
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: {
        deviceId: deviceId ? { exact: deviceId } : undefined,
        echoCancellation: true,
        noiseSuppression: true,
        autoGainControl: true,
      },
    });
    return { track: stream.getAudioTracks()[0], error: null };
  } catch (e) {
    return { track: null, error: describe(e) };
  }
}

export async function openCamera(deviceId?: string): Promise<DeviceResult> {
  if (!hasMediaDevices()) return { track: null, error: "this page cannot use devices (needs https or localhost)" };
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      video: {
        deviceId: deviceId ? { exact: deviceId } : undefined,
        width: { ideal: 1280 },
        height: { ideal: 720 },
        frameRate: { ideal: 30 },
      },
    });
    return { track: stream.getVideoTracks()[0], error: null };
  } catch (e) {
    return { track: null, error: describe(e) };
  }
}

export async function listDevices(): Promise<DeviceLists> {
  if (!hasMediaDevices()) return { microphones: [], cameras: [], speakers: [] };
  const all = await navigator.mediaDevices.enumerateDevices();
  return {
    microphones: all.filter((d) => d.kind === "audioinput"),
    cameras: all.filter((d) => d.kind === "videoinput"),
    speakers: all.filter((d) => d.kind === "audiooutput"),
  };
}

function read(key: string): string | null {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

function write(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // Private mode or storage full: preferences are a convenience only.
  }
}

export const prefs = {
  name: () => read("convene.name") ?? "",
  setName: (v: string) => write("convene.name", v),
  microphone: () => read("convene.microphone") ?? undefined,
  setMicrophone: (v: string) => write("convene.microphone", v),
  camera: () => read("convene.camera") ?? undefined,
  setCamera: (v: string) => write("convene.camera", v),
  recentRooms: (): string[] => {
    try {
      const v = JSON.parse(read("convene.recent") ?? "[]");
      return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string").slice(0, 8) : [];
    } catch {
      return [];
    }
  },
  addRecentRoom: (room: string) => {
    const list = [room, ...prefs.recentRooms().filter((r) => r !== room)].slice(0, 8);
    write("convene.recent", JSON.stringify(list));
  },
};

/** Publishes the level (0..1) of an audio track a few times per second; returns a stop function. */
export function watchLevel(track: MediaStreamTrack, onLevel: (level: number) => void): () => void {
  const Ctx = window.AudioContext ?? (window as unknown as { webkitAudioContext?: typeof AudioContext }).webkitAudioContext;
  if (!Ctx) return () => {};
  const ctx = new Ctx();
  const source = ctx.createMediaStreamSource(new MediaStream([track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  source.connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    // RMS mapped so that normal speech fills most of the meter.
    onLevel(Math.min(1, Math.sqrt(sum / data.length) * 4));
  }, 100);
  return () => {
    clearInterval(timer);
    source.disconnect();
    void ctx.close();
  };
}
