// Durable jobs: deliveries, payment events and timers, with their attempts and last
// error; a job can be retried now or cancelled, with a reason that goes into the audit
// trail. Given-up deliveries (`GET /deliveries/given-up`) are listed first, since those
// are the ones someone has to look at. Filters go to the admin API as it takes them
// (deliveries by instance and state, events by provider, timers by instance) and live
// in the URL (#/jobs/deliveries/instance=live&state=failed), so a view can be shared.
// The lists refresh by themselves, so a retried job is seen going through.

import { api, seg } from '../api.js';
import { errorBox, facts, field, fill, h, okBox, table, timeMs } from '../dom.js';

const LIMIT = 200;
const REFRESH_MS = 2000;
/** The states `GET /deliveries?state=` accepts. */
const DELIVERY_STATES = ['pending', 'done', 'failed', 'cancelled'];

const KINDS = {
  deliveries: {
    title: 'Deliveries',
    noun: 'delivery',
    filters: [{ name: 'instance', label: 'Instance' }, { name: 'state', label: 'State', choices: DELIVERY_STATES }],
    headers: ['Id', 'Instance', 'State', 'Attempts', 'Next attempt', 'Last status', 'Last error', 'URL', 'Actions'],
    row: deliveryRow,
  },
  events: {
    title: 'Payment events',
    noun: 'payment event',
    filters: [{ name: 'provider', label: 'Provider instance' }],
    headers: ['Id', 'Provider', 'System', 'Reference', 'Status', 'Amount', 'State', 'Attempts', 'Next attempt', 'Last error', 'Actions'],
    row: eventRow,
  },
  timers: {
    title: 'Timers',
    noun: 'timer',
    filters: [{ name: 'instance', label: 'Instance' }],
    headers: ['Id', 'Instance', 'Name', 'Due', 'State', 'Attempts', 'Last error', 'Actions'],
    row: timerRow,
  },
};

/** States after which there is nothing left to retry or cancel. */
const ENDED = new Set(['done', 'cancelled']);
/** States with no attempt planned (a given-up job waits for an operator). */
const UNPLANNED = new Set(['done', 'cancelled', 'failed']);

export async function renderJobs(main, args) {
  const kind = KINDS[args[0]] ? args[0] : 'deliveries';
  const spec = KINDS[kind];
  const params = new URLSearchParams(args[1] || '');
  const tabs = h(
    'nav',
    { class: 'tabs', 'aria-label': 'Job kinds' },
    h('ul', {}, Object.entries(KINDS).map(([k, s]) => h('li', {}, h('a', { href: `#/jobs/${k}`, 'aria-current': k === kind ? 'page' : false }, s.title)))),
  );
  const controls = spec.filters.map((f) => {
    const control = f.choices
      ? h('select', { name: f.name }, h('option', { value: '' }, 'any'), f.choices.map((c) => h('option', { value: c }, c)))
      : h('input', { type: 'text', name: f.name, spellcheck: 'false', autocomplete: 'off' });
    // A value the select does not offer (typed into the URL) is still sent: the API
    // says what is wrong with it.
    const wanted = params.get(f.name) || '';
    if (f.choices && wanted && !f.choices.includes(wanted)) control.append(h('option', { value: wanted }, wanted));
    control.value = wanted;
    return { ...f, control };
  });
  const filters = h(
    'form',
    { class: 'inline-form', 'aria-label': `Filter ${spec.title.toLowerCase()}` },
    controls.map((c) => field(c.label, c.control)),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Show')),
  );
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    const q = new URLSearchParams();
    for (const c of controls) if (c.control.value.trim()) q.set(c.name, c.control.value.trim());
    const hash = `#/jobs/${kind}${q.toString() ? `/${q}` : ''}`;
    if (location.hash === hash) load();
    else location.hash = hash;
  });

  const result = h('div', { class: 'result', 'aria-live': 'polite', tabindex: '-1' });
  const confirmArea = h('div', {});
  const lists = h('div', {});
  fill(main, h('h1', {}, 'Jobs'), tabs, filters, result, confirmArea, lists);

  // The query the lists were asked with: the page's own parameters, as the URL gives them.
  const asked = new URLSearchParams({ limit: String(LIMIT) });
  for (const c of controls) if (params.get(c.name)) asked.set(c.name, params.get(c.name));

  /** The lists to show, each `{list, title, path, rows}` to ask for: one call each. */
  function listsAsked() {
    if (kind !== 'deliveries') return [{ list: kind, title: `${spec.title}${filterText()}`, path: `/${kind}?${asked}`, rows: (a) => a[kind] }];
    const givenUpQuery = new URLSearchParams(asked);
    givenUpQuery.delete('state');
    const state = asked.get('state');
    return [
      { list: 'given-up', title: `Given-up deliveries${filterText(['instance'])}`, path: `/deliveries/given-up?${givenUpQuery}`, rows: (a) => a.deliveries },
      { list: 'deliveries', title: `${state ? `Deliveries in state ${state}` : 'All deliveries'}${filterText(['instance'])}, newest first`, path: `/deliveries?${asked}`, rows: (a) => a.deliveries },
    ];
  }

  /** One round of calls: per list its rows, or the error the API gave for it. */
  async function fetchLists() {
    const wanted = listsAsked();
    const answers = await Promise.allSettled(wanted.map((w) => api.get(w.path)));
    return wanted.map((w, i) => {
      const a = answers[i];
      if (a.status === 'rejected') return { list: w.list, title: w.title, error: a.reason };
      return { list: w.list, caption: `${w.title} (${a.value.count})`, rows: w.rows(a.value) };
    });
  }

  function filterText(names = spec.filters.map((f) => f.name)) {
    const parts = names.filter((n) => asked.get(n)).map((n) => `${n} ${asked.get(n)}`);
    return parts.length ? ` for ${parts.join(', ')}` : '';
  }

  // Redrawn only when an answer differs, so a keyboard or screen reader user's place
  // in the tables is not lost every refresh.
  let lastDrawn = '';
  // One round of calls at a time: a slow answer must not be drawn over a newer one.
  let inFlight = null;
  function load() {
    inFlight = inFlight || loadOnce().finally(() => {
      inFlight = null;
    });
    return inFlight;
  }
  async function loadOnce() {
    const shown = await fetchLists();
    const key = JSON.stringify(shown.map((s) => (s.error ? { ...s, error: [s.error.status, s.error.text] } : s)));
    if (key === lastDrawn) return;
    lastDrawn = key;
    fill(
      lists,
      shown.map((s) => (s.error
        ? h('div', { 'data-list': s.list }, errorBox(s.error, `Could not list the ${s.list === 'given-up' ? 'given-up deliveries' : spec.title.toLowerCase()}`))
        : table(s.caption, spec.headers, s.rows.map((r) => [...spec.row(r), actions(r)]), { class: 'jobs', 'data-list': s.list }))),
    );
  }

  function actions(job) {
    const ended = ENDED.has(job.state);
    const retry = h('button', { type: 'button', class: 'secondary small', disabled: ended, 'aria-label': `Retry ${spec.noun} ${job.id} now` }, 'Retry');
    const cancel = h('button', { type: 'button', class: 'secondary small', disabled: ended, 'aria-label': `Cancel ${spec.noun} ${job.id}` }, 'Cancel');
    retry.addEventListener('click', () => confirmAction(job, 'retry', retry));
    cancel.addEventListener('click', () => confirmAction(job, 'cancel', cancel));
    return h('div', { class: 'buttons tight' }, retry, cancel);
  }

  function confirmAction(job, action, opener) {
    const what = action === 'retry' ? `Retry ${spec.noun} ${job.id} now` : `Cancel ${spec.noun} ${job.id}`;
    const reason = h('input', { type: 'text', name: 'reason', required: true, autocomplete: 'off', maxlength: '500' });
    const go = h('button', { type: 'submit', class: action === 'cancel' ? 'primary danger' : 'primary' }, action === 'retry' ? 'Confirm retry' : 'Confirm cancel');
    const back = h('button', { type: 'button', class: 'secondary' }, 'Back');
    const problem = h('div', { 'aria-live': 'assertive' });
    const panel = h(
      'form',
      // The page checks the reason itself and says what is missing in words.
      { class: 'confirm', role: 'alertdialog', novalidate: true, 'aria-labelledby': 'job-confirm-title', 'aria-describedby': 'job-confirm-facts' },
      h('h2', { id: 'job-confirm-title' }, `${what}?`),
      h('div', { id: 'job-confirm-facts' }, facts([
        ['State', job.state],
        ['Attempts', String(job.attempts)],
        ['Last error', job.last_error ?? '—'],
      ])),
      field('Reason', reason, 'Recorded in the audit trail'),
      problem,
      h('div', { class: 'buttons' }, go, back),
    );
    const close = () => {
      fill(confirmArea);
      // The opener may have been redrawn meanwhile; its replacement has the same name.
      const again = [...lists.querySelectorAll('button')].find((b) => b.getAttribute('aria-label') === opener.getAttribute('aria-label'));
      (again || opener).focus();
    };
    back.addEventListener('click', close);
    panel.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') close();
    });
    panel.addEventListener('submit', async (event) => {
      event.preventDefault();
      if (!reason.value.trim()) {
        fill(problem, h('div', { class: 'error', role: 'alert' }, h('p', {}, 'Give a reason.')));
        return;
      }
      go.disabled = true;
      back.disabled = true;
      try {
        const { answer, requestId } = await api.act('POST', `/${kind}/${seg(job.id)}/${action}`, { reason: reason.value.trim() });
        fill(result, okBox(
          h('p', {}, `${what}: accepted, state now ${answer.state}.`),
          facts([...Object.entries(answer).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]), ['Request id', h('code', { 'data-testid': 'request-id' }, requestId)]]),
        ));
      } catch (e) {
        fill(result, errorBox(e, `${what} refused`));
      }
      fill(confirmArea);
      result.focus();
      await load();
    });
    fill(confirmArea, panel);
    reason.focus();
  }

  await load();
  const timer = setInterval(load, REFRESH_MS);
  return () => clearInterval(timer);
}

/** A job id, set as code so it reads as one token. */
function id(value) {
  return h('code', { class: 'id' }, String(value));
}

function deliveryRow(d) {
  return [
    id(d.id),
    d.instance,
    d.state,
    d.max_attempts ? `${d.attempts} of ${d.max_attempts}` : String(d.attempts),
    UNPLANNED.has(d.state) ? '—' : timeMs(d.next_at_ms),
    d.last_status ?? '—',
    d.last_error ?? '—',
    d.url,
  ];
}

function eventRow(e) {
  return [id(e.id), e.provider, e.system, e.reference, e.status, e.amount ? `${e.amount} ${e.currency}` : '—', e.state, String(e.attempts), UNPLANNED.has(e.state) ? '—' : timeMs(e.next_at_ms), e.last_error ?? '—'];
}

function timerRow(t) {
  return [id(t.id), t.instance, t.name, timeMs(t.due_at_ms), t.state, String(t.attempts), t.last_error ?? '—'];
}
