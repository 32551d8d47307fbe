// The shared whiteboard: the real Excalidraw component, kept in sync through the /socket.io/ relay
// with Excalidraw's own encrypted collab messages (loaded lazily: it is most of the app's weight).
import {
  CaptureUpdateAction,
  Excalidraw,
  getSceneVersion,
  reconcileElements,
  restoreElements,
} from "@excalidraw/excalidraw";
import "@excalidraw/excalidraw/index.css";
import { useEffect, useRef, useState } from "react";
import { CollabSession, type CollabPayload, type WhiteboardMetadata } from "../protocol/whiteboard";

type Api = Parameters<NonNullable<React.ComponentProps<typeof Excalidraw>["excalidrawAPI"]>>[0];
type Elements = ReturnType<Api["getSceneElementsIncludingDeleted"]>;
type Collaborators = Map<string, Record<string, unknown>>;

/** Excalidraw resends the whole scene this often so that lost updates heal. */
const FULL_SYNC_MS = 20_000;

export default function Whiteboard({ board, username }: { board: WhiteboardMetadata; username: string }) {
  const [api, setApi] = useState<Api | null>(null);
  const session = useRef<CollabSession | null>(null);
  /** Highest element version sent or received, per element id: only newer versions are broadcast. */
  const versions = useRef(new Map<string, number>());
  const lastSceneVersion = useRef(-1);
  const collaborators = useRef<Collaborators>(new Map());

  useEffect(() => {
    if (!api) return;
    const remember = (elements: Elements) => {
      for (const e of elements) versions.current.set(e.id, e.version);
      lastSceneVersion.current = getSceneVersion(elements);
    };
    const sendScene = (type: "SCENE_INIT" | "SCENE_UPDATE", all: boolean) => {
      const elements = api.getSceneElementsIncludingDeleted();
      const changed = all ? elements : elements.filter((e) => (versions.current.get(e.id) ?? -1) < e.version);
      remember(elements);
      if (changed.length > 0 || type === "SCENE_INIT") {
        void session.current?.broadcast({ type, payload: { elements: changed } });
      }
    };
    const apply = (payload: CollabPayload) => {
      switch (payload.type) {
        case "SCENE_INIT":
        case "SCENE_UPDATE": {
          const remote = restoreElements(payload.payload.elements as never, null);
          const merged = reconcileElements(api.getSceneElementsIncludingDeleted(), remote as never, api.getAppState());
          remember(merged);
          api.updateScene({ elements: merged, captureUpdate: CaptureUpdateAction.NEVER });
          break;
        }
        case "MOUSE_LOCATION": {
          const { socketId, pointer, button, selectedElementIds, username: name } = payload.payload;
          const next = new Map(collaborators.current);
          next.set(socketId, { ...next.get(socketId), pointer, button, selectedElementIds, username: name, socketId });
          collaborators.current = next;
          api.updateScene({ collaborators: next as never });
          break;
        }
        default:
          break;
      }
    };
    const s = new CollabSession(board.collabDetails, board.collabServerUrl, {
      onNewUser: () => sendScene("SCENE_INIT", true),
      onPayload: apply,
      onUsers: (ids) => {
        // Drop pointers of people who left the board.
        const next = new Map([...collaborators.current].filter(([id]) => ids.includes(id)));
        collaborators.current = next;
        api.updateScene({ collaborators: next as never });
      },
    });
    session.current = s;
    const fullSync = setInterval(() => sendScene("SCENE_UPDATE", true), FULL_SYNC_MS);
    const debug = window as unknown as { __convene?: Record<string, unknown> };
    if (debug.__convene) {
      debug.__convene.whiteboardElements = () => api.getSceneElements().map((e) => ({ id: e.id, type: e.type }));
    }
    return () => {
      clearInterval(fullSync);
      s.close();
      session.current = null;
      if (debug.__convene) delete debug.__convene.whiteboardElements;
    };
  }, [api, board.collabDetails.roomId, board.collabDetails.roomKey, board.collabServerUrl]);

  return (
    <div className="whiteboard" data-testid="whiteboard">
      <Excalidraw
        excalidrawAPI={setApi}
        isCollaborating
        theme="light"
        UIOptions={{ canvasActions: { loadScene: false, saveToActiveFile: false, export: false } }}
        onChange={(elements) => {
          if (!session.current) return;
          if (getSceneVersion(elements) <= lastSceneVersion.current) return;
          const changed = elements.filter((e) => (versions.current.get(e.id) ?? -1) < e.version);
          for (const e of elements) versions.current.set(e.id, e.version);
          lastSceneVersion.current = getSceneVersion(elements);
          if (changed.length > 0) void session.current.broadcast({ type: "SCENE_UPDATE", payload: { elements: changed } });
        }}
        onPointerUpdate={({ pointer, button }) => {
          const s = session.current;
          if (!s?.id) return;
          void s.broadcast(
            {
              type: "MOUSE_LOCATION",
              payload: { socketId: s.id, pointer, button, selectedElementIds: api?.getAppState().selectedElementIds ?? {}, username },
            },
            true,
          );
        }}
      />
    </div>
  );
}
