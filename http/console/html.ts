/**
 * Server-rendered HTML through `hono/html`: `html` escapes every interpolated string (`& < > " '`) unless it is
 * already escaped markup (another `html` result or `raw`); arrays are flattened; null, undefined and false render
 * nothing, so `${cond && html`...`}` reads naturally. The console's templates are synchronous: the value types below
 * leave out promises, so a page is always a finished string.
 */
import { html as honoHtml, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';

export { raw };

/** Markup that is safe to embed as is. */
export type Html = HtmlEscapedString;

/** What a template takes: `true` is left out, since hono/html would drop it silently. */
export type HtmlValue = Html | string | number | false | null | undefined | readonly HtmlValue[];

/** Builds Html from a template, escaping every interpolation that is not Html already. */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): Html {
  const out = honoHtml(strings, ...values);
  // Only a promise among the values makes hono/html asynchronous, and HtmlValue admits none.
  if (out instanceof Promise) throw new TypeError('console templates are synchronous');
  return out;
}

/** Serialises a value as JSON that is safe inside an HTML attribute or a script element. */
export function jsonForHtml(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026');
}
