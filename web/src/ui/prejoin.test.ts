import { describe, expect, it } from "vitest";
import { joinChoices } from "./Prejoin";

const track = { kind: "video" } as unknown as MediaStreamTrack;
const base = {
  mic: track,
  cam: track,
  micPending: false,
  camPending: false,
  audioMuted: false,
  videoMuted: false,
  micError: null,
  camError: null,
};

describe("joining from the prejoin page", () => {
  it("hands over the opened devices", () => {
    const c = joinChoices(" Ada ", base);
    expect(c).toMatchObject({ name: "Ada", microphone: track, camera: track, audioMuted: false, videoMuted: false });
  });

  it("asks the meeting to open a camera or microphone that was still opening", () => {
    const c = joinChoices("", { ...base, mic: null, cam: null, micPending: true, camPending: true });
    expect(c).toMatchObject({ name: null, microphone: "open", camera: "open", audioMuted: false, videoMuted: false });
  });

  it("joins without a device that failed, and says why", () => {
    const c = joinChoices("Bo", { ...base, cam: null, camError: "permission denied" });
    expect(c).toMatchObject({ camera: null, videoMuted: true, deviceErrors: { microphone: null, camera: "permission denied" } });
  });

  it("keeps the camera off when the user turned it off", () => {
    const c = joinChoices("Cy", { ...base, cam: null, videoMuted: true, camError: "no device found" });
    expect(c).toMatchObject({ camera: null, videoMuted: true, deviceErrors: { camera: null } });
  });
});
