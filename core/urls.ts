/** A base URL as links are built on it: without trailing slashes (the console, notifications, the operator CLI). */
export function trimBaseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}
