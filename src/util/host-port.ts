/**
 * Splits `host:port`, `[v6]:port` or `:port` into its parts (brackets removed, host may be
 * empty). Returns undefined for anything else. Callers apply their own rules on top (a listen
 * address accepts an empty host and port 0; a member's address does not).
 */
export function splitHostPort(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]*):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

/** `host:port`, with an IPv6 host in brackets. */
export function joinHostPort(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}
