// The prejoin page: display name, camera preview, microphone level, device pickers, join muted.
import { useEffect, useRef, useState } from "react";
import type { ClientConfig } from "../protocol/config";
import { listDevices, openCamera, openMicrophone, prefs, watchLevel, type DeviceLists } from "./devices";
import { Logo } from "./Logo";
import type { JoinChoices } from "./Meeting";
import { t } from "./strings";

interface Props {
  config: ClientConfig;
  room: string;
  initialName: string;
  onJoin: (choices: Omit<JoinChoices, "jwt">) => void;
}

export function Prejoin({ config, room, initialName, onJoin }: Props) {
  const [name, setName] = useState(initialName);
  const [mic, setMic] = useState<MediaStreamTrack | null>(null);
  const [cam, setCam] = useState<MediaStreamTrack | null>(null);
  const [micError, setMicError] = useState<string | null>(null);
  const [camError, setCamError] = useState<string | null>(null);
  const [devices, setDevices] = useState<DeviceLists>({ microphones: [], cameras: [], speakers: [] });
  const [micId, setMicId] = useState<string | undefined>(prefs.microphone());
  const [camId, setCamId] = useState<string | undefined>(prefs.camera());
  const [audioMuted, setAudioMuted] = useState(false);
  const [videoMuted, setVideoMuted] = useState(false);
  const [level, setLevel] = useState(0);
  const video = useRef<HTMLVideoElement>(null);
  const handedOver = useRef(false);

  // Open (or reopen on a device change) the microphone.
  useEffect(() => {
    let track: MediaStreamTrack | null = null;
    let cancelled = false;
    void openMicrophone(micId).then(async (r) => {
      if (cancelled) return r.track?.stop();
      track = r.track;
      setMic(r.track);
      setMicError(r.error);
      setDevices(await listDevices());
    });
    return () => {
      cancelled = true;
      if (!handedOver.current) track?.stop();
    };
  }, [micId]);

  useEffect(() => {
    let track: MediaStreamTrack | null = null;
    let cancelled = false;
    if (videoMuted) {
      setCam(null);
      return;
    }
    void openCamera(camId).then(async (r) => {
      if (cancelled) return r.track?.stop();
      track = r.track;
      setCam(r.track);
      setCamError(r.error);
      setDevices(await listDevices());
    });
    return () => {
      cancelled = true;
      if (!handedOver.current) track?.stop();
    };
  }, [camId, videoMuted]);

  useEffect(() => {
    if (video.current) video.current.srcObject = cam ? new MediaStream([cam]) : null;
  }, [cam]);

  useEffect(() => {
    if (!mic) return;
    return watchLevel(mic, setLevel);
  }, [mic]);

  const join = () => {
    handedOver.current = true;
    if (mic) mic.enabled = !audioMuted;
    // A device still opening (Join pressed before the preview came up) is opened again by the
    // meeting: joining without it would turn the camera or microphone off behind the user's back.
    const micPending = !mic && !micError;
    const camPending = !videoMuted && !cam && !camError;
    onJoin(joinChoices(name, { mic, cam, micPending, camPending, audioMuted, videoMuted, micError, camError }));
  };

  const warning =
    micError && camError && !videoMuted ? t.bothDenied : micError ? t.micDenied : camError && !videoMuted ? t.cameraDenied : null;

  return (
    <main className="prejoin">
      <header className="brand small">
        <Logo config={config} size={32} />
        <span>{config.app_name}</span>
      </header>
      <h1>{t.prejoinTitle(room)}</h1>
      <div className="prejoin-body">
        <div className="preview">
          <video ref={video} autoPlay playsInline muted data-testid="preview" />
          {!cam && <div className="preview-off">{t.noCamera}</div>}
          <div className="meter" aria-label="microphone level">
            <div className="meter-fill" style={{ width: `${Math.round(level * 100)}%` }} />
          </div>
        </div>
        <form
          className="prejoin-form"
          onSubmit={(e) => {
            e.preventDefault();
            join();
          }}
        >
          <label>
            {t.yourName}
            <input
              name="display-name"
              value={name}
              placeholder={t.namePlaceholder}
              maxLength={64}
              autoFocus
              onChange={(e) => setName(e.target.value)}
            />
          </label>
          <label>
            {t.microphone}
            <select
              name="microphone"
              value={micId ?? mic?.getSettings().deviceId ?? ""}
              onChange={(e) => {
                prefs.setMicrophone(e.target.value);
                setMicId(e.target.value);
              }}
            >
              {devices.microphones.map((d, i) => (
                <option key={d.deviceId || i} value={d.deviceId}>
                  {d.label || `${t.microphone} ${i + 1}`}
                </option>
              ))}
            </select>
          </label>
          <label>
            {t.camera}
            <select
              name="camera"
              value={camId ?? cam?.getSettings().deviceId ?? ""}
              onChange={(e) => {
                prefs.setCamera(e.target.value);
                setCamId(e.target.value);
              }}
            >
              {devices.cameras.map((d, i) => (
                <option key={d.deviceId || i} value={d.deviceId}>
                  {d.label || `${t.camera} ${i + 1}`}
                </option>
              ))}
            </select>
          </label>
          <label className="check">
            <input type="checkbox" name="audio-muted" checked={audioMuted} onChange={(e) => setAudioMuted(e.target.checked)} />
            {t.joinMuted}
          </label>
          <label className="check">
            <input type="checkbox" name="video-muted" checked={videoMuted} onChange={(e) => setVideoMuted(e.target.checked)} />
            {t.joinVideoOff}
          </label>
          {warning && (
            <p className="warning" role="alert">
              {warning}
            </p>
          )}
          <button type="submit" className="primary" data-testid="join">
            {t.join}
          </button>
        </form>
      </div>
    </main>
  );
}

/** What the meeting gets from the prejoin page; a device still opening is handed over as "open". */
export function joinChoices(
  name: string,
  d: {
    mic: MediaStreamTrack | null;
    cam: MediaStreamTrack | null;
    micPending: boolean;
    camPending: boolean;
    audioMuted: boolean;
    videoMuted: boolean;
    micError: string | null;
    camError: string | null;
  },
): Omit<JoinChoices, "jwt"> {
  return {
    name: name.trim() || null,
    microphone: d.micPending ? "open" : d.mic,
    camera: d.videoMuted ? null : d.camPending ? "open" : d.cam,
    audioMuted: d.audioMuted || (!d.mic && !d.micPending),
    videoMuted: d.videoMuted || (!d.cam && !d.camPending),
    deviceErrors: { microphone: d.micError, camera: d.videoMuted ? null : d.camError },
  };
}
