/**
 * How the console compares the people and places of sign-in: emails, allowed domains and its base URL. Shared by
 * the console (http/console), its tables (db/repositories/console-repository) and the Lambda configuration,
 * which checks the console's settings at cold start without loading the console.
 */

/** Lower-cases and trims an email, the key every console table uses. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Whether a normalised admin entry is an email address. */
export function isEmailAddress(text: string): boolean {
  return /^[^@\s]+@[^@\s]+$/.test(text);
}

/** An allowed sign-in domain as the console compares it: lower-cased, without a leading `@`. */
export function normalizeDomain(domain: string): string {
  return domain.toLowerCase().replace(/^@/, '');
}
