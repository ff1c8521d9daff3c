/**
 * The create and edit form of a job definition, and the script editor it shares with the launch form: a textarea
 * with a line gutter that marks each problem at its line, validated as you type by the browser script.
 */
import type { ScriptProblem } from '../../core/errors';
import { PREVENT_MULTI } from '../../core/model';
import type { ConsoleUser } from './console-access';
import { csrfField, layout, type PageContext } from './console-layout';
import { html, jsonForHtml, type Html } from './html';

/** What each overlap policy does, in words. */
export const PREVENT_MULTI_TEXT: Record<number, string> = {
  [PREVENT_MULTI.none]: 'Launch always, even while another instance works or failed',
  [PREVENT_MULTI.workingOrError]: 'Do not launch while another instance works or is stopped on an error',
  [PREVENT_MULTI.working]: 'Do not launch while another instance works',
  [PREVENT_MULTI.error]: 'Do not launch while another instance is stopped on an error',
};

/** The script editor: a textarea with a line gutter that marks each problem at its line, validated as you type. */
export function scriptEditor(id: string, name: string, label: string, script: string, problems: readonly ScriptProblem[]): Html {
  const checked = problems.length > 0;
  return html`<label for="${id}">${label} <span class="hint">checked as you type; errors are marked at their line</span></label>
<div class="editor" data-editor data-problems="${jsonForHtml(problems)}"${checked ? ' data-checked' : ''}>
<div class="gutter" aria-hidden="true"></div>
<textarea id="${id}" name="${name}" rows="12" class="code" spellcheck="false" autocapitalize="off" autocomplete="off" wrap="off" aria-describedby="${id}-problems">${script}</textarea>
</div>
<ul class="problems" id="${id}-problems" aria-live="polite">${problems.map(
    (p) => html`<li data-line="${p.line}">Line ${p.line}, column ${p.column}: ${p.message}</li>`,
  )}</ul>`;
}

/** The values of the create/edit form. */
export interface DefinitionFormValues {
  name: string;
  description: string;
  script: string;
  tags: string;
  crons: string;
  suspendCrons: string;
  timeZone: string;
  preventMulti: number;
  suspended: boolean;
  apiAllowed: boolean;
  notifyCancellation: boolean;
  notifyAll: boolean;
  slackChannel: string;
  webhookUrl: string;
  catchUpWindowMinutes: string;
  /** Empty: the global retention policy. */
  retentionDays?: string;
  admins: string;
  version?: number;
}

export interface FieldErrors {
  /** Messages per form field name; `_` for the whole form. */
  [field: string]: string[];
}

function fieldErrors(errors: FieldErrors, field: string): Html {
  return html`${(errors[field] ?? []).map((m) => html`<p class="field-error" id="err-${field}">${m}</p>`)}`;
}

function textField(name: string, label: string, value: string, errors: FieldErrors, hint = '', type = 'text', extra = ''): Html {
  return html`<label for="f-${name}">${label}${hint ? html` <span class="hint">${hint}</span>` : ''}</label>
<input id="f-${name}" type="${type}" name="${name}" value="${value}"${errors[name] ? html` aria-invalid="true" aria-describedby="err-${name}"` : ''}${extra ? html` ${extra}` : ''}>${fieldErrors(errors, name)}`;
}

function checkbox(name: string, label: string, checked: boolean): Html {
  return html`<label><input type="checkbox" name="${name}" value="true"${checked ? ' checked' : ''}> ${label}</label>`;
}

export interface DefinitionFormData {
  mode: 'new' | 'edit';
  definitionId?: number;
  values: DefinitionFormValues;
  errors: FieldErrors;
  scriptProblems: readonly ScriptProblem[];
  knownEmails: string[];
  timeZones: string[];
  canChangeAdmins: boolean;
}

/** The create and edit form. */
export function definitionFormPage(ctx: PageContext & { user: ConsoleUser }, data: DefinitionFormData): Html {
  const v = data.values;
  const title = data.mode === 'new' ? 'New job definition' : `Edit ${v.name}`;
  const action = data.mode === 'new' ? '/definitions' : `/definitions/${data.definitionId}`;
  const generalErrors = data.errors._ ?? [];
  return layout(
    ctx,
    title,
    html`<h1>${title}</h1>
<form method="post" action="${action}" class="panel" novalidate>
${csrfField(ctx.user)}
${v.version !== undefined ? html`<input type="hidden" name="version" value="${v.version}">` : ''}
${generalErrors.length > 0 ? html`<div class="flash flash-error" role="alert">${generalErrors.map((m) => html`<p>${m}</p>`)}</div>` : ''}
${textField('name', 'Name', v.name, data.errors, '', 'text', 'required maxlength="180"')}
<label for="f-description">Description</label>
<textarea id="f-description" name="description" rows="3">${v.description}</textarea>${fieldErrors(data.errors, 'description')}
${scriptEditor('f-script', 'script', 'Script', v.script, data.scriptProblems)}${fieldErrors(data.errors, 'script')}
<div class="grid2">
<div>
<label for="f-crons">Cron schedules <span class="hint">one per line, e.g. <code>0 9 * * 1-5</code></span></label>
<textarea id="f-crons" name="crons" rows="3" class="code" spellcheck="false">${v.crons}</textarea>${fieldErrors(data.errors, 'cron')}
<label for="f-suspend">Suspend schedules <span class="hint">launches falling on these are skipped</span></label>
<textarea id="f-suspend" name="suspend_crons" rows="2" class="code" spellcheck="false">${v.suspendCrons}</textarea>${fieldErrors(data.errors, 'suspend_cron')}
${textField('time_zone', 'Time zone of the schedules', v.timeZone, data.errors, 'IANA name', 'text', 'list="time-zones" autocomplete="off"')}
<datalist id="time-zones">${data.timeZones.map((z) => html`<option value="${z}">`)}</datalist>
${textField('catch_up_window_minutes', 'Catch-up window (minutes)', v.catchUpWindowMinutes, data.errors, 'missed slots launch this late at most', 'number', 'min="0" max="10080"')}
${textField('retention_days', 'Keep finished instances (days)', v.retentionDays ?? '', data.errors, 'empty: the global policy; 0: forever', 'number', 'min="0" max="36500"')}
</div>
<div>
${textField('tags', 'Tags', v.tags, data.errors, 'comma separated')}
<label for="f-admins">Admins <span class="hint">emails, one per line: they may change, launch and operate this job</span></label>
<textarea id="f-admins" name="admins" rows="3" spellcheck="false"${data.canChangeAdmins ? '' : html` readonly aria-describedby="admins-note"`}>${v.admins}</textarea>${fieldErrors(data.errors, 'admins')}
${data.canChangeAdmins ? '' : html`<p class="hint" id="admins-note">Only a global admin changes who administers a job.</p>`}
${data.knownEmails.length > 0 ? html`<p class="hint">People who signed in: ${data.knownEmails.join(', ')}</p>` : ''}
<fieldset><legend>When an instance is still working or failed</legend>
${[PREVENT_MULTI.workingOrError, PREVENT_MULTI.working, PREVENT_MULTI.error, PREVENT_MULTI.none].map(
  (value) => html`<label><input type="radio" name="prevent_multi" value="${value}"${v.preventMulti === value ? ' checked' : ''}> ${PREVENT_MULTI_TEXT[value]}</label><br>`,
)}
</fieldset>${fieldErrors(data.errors, 'prevent_multi')}
<fieldset><legend>Options</legend>
${checkbox('suspended', 'Suspend scheduling', v.suspended)}<br>
${checkbox('api_allowed', 'Allow launches through the API', v.apiAllowed)}<br>
${checkbox('notify_all', 'Notify every event (not only failures) to Slack and the webhook', v.notifyAll)}<br>
${checkbox('notify_cancellation', 'Notify when the system cancels an instance', v.notifyCancellation)}
</fieldset>
${textField('slack_channel', 'Slack channel', v.slackChannel, data.errors)}
${textField('webhook_url', 'Webhook URL', v.webhookUrl, data.errors, '', 'url')}
</div>
</div>
<p class="actions"><button type="submit" class="primary">${data.mode === 'new' ? 'Create definition' : 'Save changes'}</button>
<a href="${data.mode === 'new' ? '/definitions' : `/definitions/${data.definitionId}`}">Cancel</a></p>
</form>`,
  );
}
