// The audit trail: every admin action that moved money or changed what runs, with who
// asked (source address, request id), why (the reason or reference given), what was
// asked and what happened. `GET /audit` answers oldest first from `since`, at most
// `limit` entries; kind and time are filtered by the host, the target on the page. The
// filters live in the URL (#/audit/kind=credit&since=...), and when a page of entries
// is full a link shows the entries after it.
//
// `since` is a millisecond and inclusive, and many entries can share one (a manual
// clock stands still): the link to the next page carries the last entry's time and
// id, and how many entries at that time were shown already (`skip`), which the next
// page asks for on top of its own and leaves out.

import { api } from '../api.js';
import { errorBox, field, fill, h, table, timeMs } from '../dom.js';

/** The kinds `GET /audit?kind=` accepts (the host's `admin::audit::KINDS`). */
const KINDS = ['credit', 'debit', 'reversal', 'overdraft', 'reload', 'rollback', 'config-reload', 'retry', 'cancel'];
const DEFAULT_LIMIT = '200';

/** Host-clock ms as the value of a datetime-local input read as UTC (whole seconds). */
function inputValue(ms) {
  const d = new Date(Number(ms));
  return Number.isNaN(d.getTime()) ? '' : d.toISOString().slice(0, 19);
}

export async function renderAudit(main, args) {
  const params = new URLSearchParams(args[0] || '');
  const kind = h('select', { name: 'kind' }, h('option', { value: '' }, 'any'), KINDS.map((k) => h('option', { value: k }, k)));
  const wantedKind = params.get('kind') || '';
  // A kind the host does not know (typed into the URL) is still sent, to show its answer.
  if (wantedKind && !KINDS.includes(wantedKind)) kind.append(h('option', { value: wantedKind }, wantedKind));
  kind.value = wantedKind;
  const since = h('input', { type: 'datetime-local', name: 'since', step: '1', value: params.get('since') ? inputValue(params.get('since')) : '' });
  const target = h('input', { type: 'text', name: 'target', value: params.get('target') || '', spellcheck: 'false', autocomplete: 'off' });
  const limit = h('input', { type: 'number', name: 'limit', min: '1', max: '1000', value: params.get('limit') || DEFAULT_LIMIT });
  const form = h(
    'form',
    { class: 'inline-form', 'aria-label': 'Filter the audit trail' },
    field('Kind', kind),
    field('Since (UTC)', since),
    field('Target contains', target, 'An account id, instance name or job id'),
    field('At most', limit),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Show')),
  );
  const list = h('div', {});
  fill(main, h('h1', {}, 'Audit trail'), form, list);

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    if (kind.value) q.set('kind', kind.value);
    if (since.value) {
      const ms = Date.parse(`${since.value}Z`);
      q.set('since', Number.isNaN(ms) ? since.value : String(ms));
    }
    if (target.value.trim()) q.set('target', target.value.trim());
    if (limit.value && limit.value !== DEFAULT_LIMIT) q.set('limit', limit.value);
    go(q);
  });

  function go(q) {
    const hash = `#/audit${q.toString() ? `/${q}` : ''}`;
    if (location.hash === hash) load();
    else location.hash = hash;
  }

  const pageSize = Number(params.get('limit') || DEFAULT_LIMIT);
  const skip = Number(params.get('skip') || 0);
  // The host's largest page; past it a run of entries in one millisecond cannot be paged.
  const asked = Math.min(1000, pageSize + skip) || pageSize;

  async function load() {
    const q = new URLSearchParams({ limit: String(asked) });
    for (const name of ['kind', 'since']) if (params.get(name)) q.set(name, params.get(name));
    let answer;
    try {
      answer = await api.get(`/audit?${q}`);
    } catch (e) {
      fill(list, errorBox(e, 'Could not read the audit trail'));
      return;
    }
    // Entries the previous pages showed come again (`since` is inclusive).
    const after = Number(params.get('after') || 0);
    const fresh = answer.entries.filter((e) => e.id > after);
    const wanted = params.get('target') || '';
    const entries = fresh.filter((e) => !wanted || String(e.target).includes(wanted));
    const rows = entries.map((e) => [
      timeMs(e.at_ms),
      e.kind,
      e.target,
      h('span', { class: `outcome ${e.outcome}` }, `${e.outcome} (${e.status})`),
      reasonOf(e),
      e.source,
      h('code', {}, e.request_id),
      h('details', {}, h('summary', {}, 'asked / answered'), h('pre', {}, JSON.stringify(e.request, null, 1)), h('pre', {}, JSON.stringify(e.result, null, 1))),
    ]);
    const shownFrom = params.get('since') ? ` from ${timeMs(params.get('since'))}` : '';
    const filtered = wanted ? ` with target containing “${wanted}”` : '';
    fill(
      list,
      table(`Audit entries${shownFrom}${filtered}, oldest first (${entries.length})`, ['Time', 'Kind', 'Target', 'Outcome', 'Reason', 'Source', 'Request id', 'Details'], rows, { class: 'audit' }),
      more(answer, fresh),
    );
  }

  /** A link to the entries after a full page, or nothing when the trail ends here. */
  function more(answer, fresh) {
    if (answer.count < asked || !fresh.length) return null;
    const last = fresh[fresh.length - 1];
    const atLast = fresh.filter((e) => e.at_ms === last.at_ms).length;
    const q = new URLSearchParams(params);
    q.set('since', String(last.at_ms));
    q.set('after', String(last.id));
    q.set('skip', String(atLast + (Number(params.get('since')) === last.at_ms ? skip : 0)));
    return h('p', {}, h('a', { href: `#/audit/${q}` }, `Later entries (after ${timeMs(last.at_ms)})`));
  }

  await load();
}

/** Why the action was taken, as the operator gave it: a job control's reason, a money movement's reference. */
function reasonOf(entry) {
  const body = entry.request && entry.request.body;
  if (!body || typeof body !== 'object') return '—';
  const why = body.reason ?? body.reference;
  return why === undefined || why === null ? '—' : String(why);
}
