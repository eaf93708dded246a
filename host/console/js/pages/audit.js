// The audit trail: every admin action that moved money or changed what runs, with who
// asked (source address, request id), what was asked and what happened. Filtered by
// kind and time on the host, and by target (account, instance, job) on the page.

import { api } from '../api.js';
import { errorBox, field, fill, h, table, timeMs } from '../dom.js';

const KINDS = ['credit', 'debit', 'reversal', 'overdraft', 'reload', 'rollback', 'config-reload', 'retry', 'cancel'];

export async function renderAudit(main, args) {
  const params = new URLSearchParams(args[0] || '');
  const kind = h('select', { name: 'kind' }, h('option', { value: '' }, 'any'), KINDS.map((k) => h('option', { value: k }, k)));
  kind.value = params.get('kind') || '';
  const since = h('input', { type: 'datetime-local', name: 'since', step: '1' });
  const target = h('input', { type: 'text', name: 'target', value: params.get('target') || '', spellcheck: 'false' });
  const limit = h('input', { type: 'number', name: 'limit', min: '1', max: '1000', value: params.get('limit') || '200' });
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

  async function load() {
    const q = new URLSearchParams({ limit: limit.value || '200' });
    if (kind.value) q.set('kind', kind.value);
    if (since.value) q.set('since', String(Date.parse(`${since.value}Z`)));
    let answer;
    try {
      answer = await api.get(`/audit?${q}`);
    } catch (e) {
      fill(list, errorBox(e, 'Could not read the audit trail'));
      return;
    }
    const wanted = target.value.trim();
    const entries = (answer.entries || []).filter((e) => !wanted || String(e.target).includes(wanted));
    const rows = entries.map((e) => [
      timeMs(e.at_ms),
      e.kind,
      e.target,
      h('span', { class: `outcome ${e.outcome}` }, `${e.outcome} (${e.status})`),
      e.source,
      h('code', {}, e.request_id),
      h('details', {}, h('summary', {}, 'asked / answered'), h('pre', {}, JSON.stringify(e.request, null, 1)), h('pre', {}, JSON.stringify(e.result, null, 1))),
    ]);
    fill(list, table(`Audit entries (${entries.length})`, ['Time', 'Kind', 'Target', 'Outcome', 'Source', 'Request id', 'Details'], rows, { class: 'audit' }));
  }

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  await load();
}
