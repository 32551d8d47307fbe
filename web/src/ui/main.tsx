// Entry point: reads /config.json (branding and options), applies the accent colour, mounts the app.
import { createRoot } from "react-dom/client";
import { DEFAULT_CLIENT_CONFIG, parseClientConfig, type ClientConfig } from "../protocol/config";
import { App } from "./App";
import "./styles.css";

async function loadConfig(): Promise<ClientConfig> {
  try {
    const response = await fetch("/config.json", { cache: "no-cache" });
    if (!response.ok) return DEFAULT_CLIENT_CONFIG;
    return parseClientConfig(await response.json());
  } catch {
    return DEFAULT_CLIENT_CONFIG;
  }
}

// Excalidraw loads its fonts from here (embedded in the binary) instead of a public CDN.
(window as unknown as { EXCALIDRAW_ASSET_PATH: string }).EXCALIDRAW_ASSET_PATH = "/excalidraw/";

void loadConfig().then((config) => {
  document.documentElement.style.setProperty("--accent", config.accent_color);
  document.title = config.app_name;
  const root = document.getElementById("root");
  if (root) createRoot(root).render(<App config={config} />);
});
