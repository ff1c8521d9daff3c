/**
 * Where a sign-in or a star sends the browser back to: a path on this site, never another origin (an open
 * redirect would let a link to the console forward a signed-in person anywhere).
 */

/** Any origin will do: only whether the path stays on it matters. */
const RETURN_TO_PROBE_ORIGIN = 'https://kuroko.invalid';

const CONTROL_MAX = 0x1f;
const DELETE = 0x7f;

/** Tabs, newlines and other controls vanish in a browser's URL parser; `\` becomes `/`. */
function hasControlOrBackslash(value: string): boolean {
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (code <= CONTROL_MAX || code === DELETE || char === '\\') return true;
  }
  return false;
}

/** The path `value` resolves to on our origin, or undefined when a browser would leave it (WHATWG URL rules). */
function resolveOnOrigin(value: string): string | undefined {
  if (!value.startsWith('/') || hasControlOrBackslash(value)) return undefined;
  let url: URL;
  try {
    url = new URL(value, RETURN_TO_PROBE_ORIGIN);
  } catch {
    return undefined;
  }
  const path = `${url.pathname}${url.search}${url.hash}`;
  // A path that still starts with `//` after resolving (`/.//evil.com`) is read as a host by the next parser.
  if (url.origin !== RETURN_TO_PROBE_ORIGIN || !path.startsWith('/') || path.startsWith('//')) return undefined;
  return path;
}

/**
 * A path on this site, or `/`: never another origin. The value is resolved the way a browser resolves a Location
 * header (WHATWG URL: tabs and newlines dropped, `\` read as `/`), so `/\t/evil.com`, `/\\evil.com` and `//evil.com`
 * are refused; so is a value that does so once percent-decoded (`/%09/evil.com`), since a proxy or a second hop may
 * decode it. What is returned is the resolved path, never the raw value.
 */
export function safeReturnTo(value: string | undefined): string {
  if (!value) return '/';
  let decoded: string;
  try {
    decoded = decodeURIComponent(value);
  } catch {
    return '/';
  }
  if (resolveOnOrigin(decoded) === undefined) return '/';
  return resolveOnOrigin(value) ?? '/';
}
