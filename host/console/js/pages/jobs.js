// Durable jobs: deliveries, payment events and timers, by state, with their attempts
// and last error; a job can be retried now or cancelled, with a reason that goes into
// the audit trail. Given-up deliveries (state `failed`) are listed apart, since those
// are the ones someone has to look at.

import { api, seg } from '../api.js';
import { errorBox, facts, field, fill, h, okBox, table, timeMs } from '../dom.js';

const KINDS = {
  deliveries: { title: 'Deliveries', filter: 'instance', noun: 'delivery' },
  events: { title: 'Payment events', filter: 'provider', noun: 'payment event' },
  timers: { title: 'Timers', filter: 'instance', noun: 'timer' },
};
const LIMIT = 200;

export async function renderJobs(main, args) {
  const kind = KINDS[args[0]] ? args[0] : 'deliveries';
  const spec = KINDS[kind];
  const params = new URLSearchParams(args[1] || '');
  const tabs = h(
    'nav',
    { class: 'tabs', 'aria-label': 'Job kinds' },
    h('ul', {}, Object.entries(KINDS).map(([k, s]) => h('li', {}, h('a', { href: `#/jobs/${k}`, 'aria-current': k === kind ? 'page' : false }, s.title)))),
  );
  const filterInput = h('input', { type: 'text', name: spec.filter, value: params.get(spec.filter) || '', spellcheck: 'false' });
  const stateSelect = h('select', { name: 'state' }, h('option', { value: '' }, 'any'));
  const filters = h(
    'form',
    { class: 'inline-form', 'aria-label': `Filter ${spec.title.toLowerCase()}` },
    field(spec.filter === 'provider' ? 'Provider instance' : 'Instance', filterInput),
    field('State', stateSelect),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Show')),
  );
  const result = h('div', { class: 'result', 'aria-live': 'polite' });
  const confirmArea = h('div', {});
  const lists = h('div', {});
  fill(main, h('h1', {}, 'Jobs'), tabs, filters, result, confirmArea, lists);

  let rows = [];
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  stateSelect.addEventListener('change', () => draw());

  async function load() {
    const q = new URLSearchParams({ limit: String(LIMIT) });
    if (filterInput.value.trim()) q.set(spec.filter, filterInput.value.trim());
    try {
      const answer = await api.get(`/${kind}?${q}`);
      rows = answer[kind];
    } catch (e) {
      fill(lists, errorBox(e, `Could not list the ${spec.title.toLowerCase()}`));
      return;
    }
    const states = [...new Set(rows.map((r) => r.state))].sort();
    const chosen = stateSelect.value;
    fill(stateSelect, h('option', { value: '' }, 'any'), states.map((s) => h('option', { value: s }, s)));
    stateSelect.value = states.includes(chosen) ? chosen : '';
    draw();
  }

  function draw() {
    const shown = rows.filter((r) => !stateSelect.value || r.state === stateSelect.value);
    const render = { deliveries: deliveryRow, events: eventRow, timers: timerRow }[kind];
    const headers = {
      deliveries: ['Id', 'Instance', 'State', 'Attempts', 'Next attempt', 'Last status', 'Last error', 'URL', 'Actions'],
      events: ['Id', 'Provider', 'System', 'Reference', 'Status', 'Amount', 'State', 'Attempts', 'Next attempt', 'Last error', 'Actions'],
      timers: ['Id', 'Instance', 'Name', 'Due', 'State', 'Attempts', 'Last error', 'Actions'],
    }[kind];
    const line = (r) => [...render(r), actions(r)];
    if (kind === 'deliveries') {
      const givenUp = shown.filter((r) => r.state === 'failed');
      const others = shown.filter((r) => r.state !== 'failed');
      fill(
        lists,
        table(`Given-up deliveries (${givenUp.length})`, headers, givenUp.map(line), { class: 'jobs', 'data-list': 'given-up' }),
        table(`Other deliveries (${others.length})`, headers, others.map(line), { class: 'jobs', 'data-list': 'deliveries' }),
      );
    } else {
      fill(lists, table(`${spec.title} (${shown.length})`, headers, shown.map(line), { class: 'jobs', 'data-list': kind }));
    }
  }

  function actions(job) {
    const ended = job.state === 'done' || job.state === 'cancelled';
    const retry = h('button', { type: 'button', class: 'secondary small', disabled: ended, 'aria-label': `Retry ${spec.noun} ${job.id} now` }, 'Retry');
    const cancel = h('button', { type: 'button', class: 'secondary small', disabled: ended, 'aria-label': `Cancel ${spec.noun} ${job.id}` }, 'Cancel');
    retry.addEventListener('click', () => confirmAction(job, 'retry'));
    cancel.addEventListener('click', () => confirmAction(job, 'cancel'));
    return h('div', { class: 'buttons tight' }, retry, cancel);
  }

  function confirmAction(job, action) {
    const what = action === 'retry' ? `Retry ${spec.noun} ${job.id} now` : `Cancel ${spec.noun} ${job.id}`;
    const reason = h('input', { type: 'text', name: 'reason', required: true, autocomplete: 'off' });
    const go = h('button', { type: 'submit', class: action === 'cancel' ? 'primary danger' : 'primary' }, action === 'retry' ? 'Confirm retry' : 'Confirm cancel');
    const back = h('button', { type: 'button', class: 'secondary' }, 'Back');
    const problem = h('div', { 'aria-live': 'assertive' });
    const panel = h(
      'form',
      { class: 'confirm', role: 'alertdialog', 'aria-labelledby': 'job-confirm-title' },
      h('h2', { id: 'job-confirm-title' }, `${what}?`),
      field('Reason', reason, 'Recorded in the audit trail'),
      problem,
      h('div', { class: 'buttons' }, go, back),
    );
    back.addEventListener('click', () => fill(confirmArea));
    panel.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!reason.value.trim()) {
        fill(problem, h('div', { class: 'error', role: 'alert' }, h('p', {}, 'Give a reason.')));
        return;
      }
      go.disabled = true;
      try {
        const answer = await api.post(`/${kind}/${seg(job.id)}/${action}`, { reason: reason.value.trim() });
        fill(result, okBox(h('p', {}, `${what}: done.`), facts(Object.entries(answer).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]))));
      } catch (e) {
        fill(result, errorBox(e, `${what} refused`));
      }
      fill(confirmArea);
      await load();
    });
    fill(confirmArea, panel);
    reason.focus();
  }

  await load();
}

function deliveryRow(d) {
  return [h('code', {}, d.id), d.instance, d.state, d.max_attempts ? `${d.attempts} of ${d.max_attempts}` : String(d.attempts), timeMs(d.next_at_ms), d.last_status ?? '—', d.last_error ?? '—', d.url];
}

function eventRow(e) {
  return [String(e.id), e.provider, e.system, e.reference, e.status, e.amount ? `${e.amount} ${e.currency}` : '—', e.state, String(e.attempts), timeMs(e.next_at_ms), e.last_error ?? '—'];
}

function timerRow(t) {
  return [String(t.id), t.instance, t.name, timeMs(t.due_at_ms), t.state, String(t.attempts), t.last_error ?? '—'];
}
