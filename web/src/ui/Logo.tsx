// The configured logo, or the built-in mark.
import type { ClientConfig } from "../protocol/config";

export function Logo({ config, size = 40 }: { config: ClientConfig; size?: number }) {
  if (config.logo_url) return <img className="logo" src={config.logo_url} alt={config.app_name} height={size} />;
  return (
    <svg className="logo" width={size} height={size} viewBox="0 0 40 40" aria-label={config.app_name} role="img">
      <rect x="2" y="8" width="26" height="24" rx="6" fill="var(--accent)" />
      <path d="M28 16 L38 10 V30 L28 24 Z" fill="var(--accent)" opacity="0.7" />
      <circle cx="15" cy="20" r="5" fill="white" />
    </svg>
  );
}
