// Toolbar and badge icons as inline SVG, so they render the same everywhere (no emoji font needed).

const PATHS: Record<string, string> = {
  mic: "M12 3a3 3 0 0 0-3 3v6a3 3 0 0 0 6 0V6a3 3 0 0 0-3-3z M5 11a7 7 0 0 0 14 0 M12 18v3 M8 21h8",
  micOff: "M9 9v3a3 3 0 0 0 5.1 2.1 M15 10V6a3 3 0 0 0-5.7-1.3 M5 11a7 7 0 0 0 11.9 5 M19 11a7 7 0 0 1-.6 2.8 M12 18v3 M8 21h8 M3 3l18 18",
  camera: "M3 7h12a2 2 0 0 1 2 2v6a2 2 0 0 1-2 2H3z M17 10l4-3v10l-4-3",
  cameraOff: "M3 7h12a2 2 0 0 1 2 2v6a2 2 0 0 1-2 2H3z M17 10l4-3v10l-4-3 M2 3l19 18",
  screen: "M3 4h18v12H3z M8 20h8 M12 16v4 M9 10l3-3 3 3 M12 7v6",
  chat: "M4 4h16v12H8l-4 4z",
  people: "M9 11a4 4 0 1 0 0-8 4 4 0 0 0 0 8z M2 21v-1a6 6 0 0 1 12 0v1 M16 3.5a4 4 0 0 1 0 7.5 M22 21v-1a6 6 0 0 0-4-5.6",
  hand: "M8 13V5a1.5 1.5 0 0 1 3 0v6 M11 11V3.5a1.5 1.5 0 0 1 3 0V11 M14 11V5a1.5 1.5 0 0 1 3 0v7 M17 12V9a1.5 1.5 0 0 1 3 0v5a8 8 0 0 1-8 8 7 7 0 0 1-6-3.5L3.5 14a1.5 1.5 0 0 1 2.6-1.5L8 15",
  smile: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z M8 14s1.5 2 4 2 4-2 4-2 M9 9h.01 M15 9h.01",
  grid: "M3 3h8v8H3z M13 3h8v8h-8z M3 13h8v8H3z M13 13h8v8h-8z",
  speaker: "M3 3h18v12H3z M3 18h5v3H3z M10 18h4v3h-4z M16 18h5v3h-5z",
  pen: "M4 20h4L19 9l-4-4L4 16z M14 6l4 4",
  record: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18z M12 16a4 4 0 1 0 0-8 4 4 0 0 0 0 8z",
  star: "M12 3l2.7 5.6 6.1.9-4.4 4.3 1 6.1L12 17l-5.4 2.9 1-6.1-4.4-4.3 6.1-.9z",
  lock: "M5 11h14v10H5z M8 11V7a4 4 0 0 1 8 0v4",
  more: "M12 6h.01 M12 12h.01 M12 18h.01",
};

export type IconName = keyof typeof PATHS;

export function Icon({ name, size = 22 }: { name: IconName; size?: number }) {
  return (
    <svg
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill={name === "star" ? "currentColor" : "none"}
      stroke="currentColor"
      strokeWidth={name === "more" ? 3 : 1.8}
      strokeLinecap="round"
      strokeLinejoin="round"
      aria-hidden
      className="icon-svg"
    >
      <path d={PATHS[name]} />
    </svg>
  );
}
