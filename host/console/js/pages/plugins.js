// Plugin instances: what each serves (mount, plugin version, component), its version
// history, request and error counts with their rates, live charts from the metrics,
// and the two operations that change what runs: reload (optionally from a new path)
// and rollback. Each operation's answer is shown beside the instance it acted on.

import { api, seg } from '../api.js';
import { errorBox, facts, field, fill, h, okBox, table, timeMs } from '../dom.js';
import { startCharts } from '../charts.js';

const REFRESH_MS = 2000;

export async function renderPlugins(main) {
  const title = h('h1', {}, 'Plugins');
  const configResult = h('div', { class: 'result', 'aria-live': 'polite' });
  const reloadConfig = h('button', { type: 'button', class: 'secondary' }, 'Reload config');
  reloadConfig.addEventListener('click', () => act(reloadConfig, configResult, 'Config reload', () => api.act('POST', '/config/reload'), () => refresh()));
  // A failed refresh is said above the cards, which stay as last seen.
  const problem = h('div', {});
  const list = h('div', { class: 'instances' });
  fill(main, h('div', { class: 'page-head' }, title, reloadConfig), configResult, problem, list);

  const cards = new Map();
  let stopped = false;
  let timer = null;

  async function refresh() {
    let answer;
    try {
      answer = await api.get('/plugins');
    } catch (e) {
      if (!stopped) fill(problem, errorBox(e, 'Could not list the plugins'));
      return;
    }
    if (stopped) return;
    fill(problem, answer.plugins.length ? null : h('p', {}, 'No plugin instance is configured.'));
    const names = new Set(answer.plugins.map((p) => p.name));
    // Instances a config reload removed go; new ones are added at the end. Cards that
    // stay are not moved, which would take the focus from a control inside them.
    for (const [name, card] of cards) {
      if (!names.has(name)) {
        card.el.remove();
        cards.delete(name);
      }
    }
    for (const plugin of answer.plugins) {
      let card = cards.get(plugin.name);
      if (!card) {
        card = instanceCard(plugin.name, refresh);
        cards.set(plugin.name, card);
        list.append(card.el);
      }
      card.update(plugin, performance.now());
    }
  }

  await refresh();
  const charts = startCharts(() => [...cards.keys()], (name) => cards.get(name)?.charts);
  timer = setInterval(refresh, REFRESH_MS);
  return () => {
    stopped = true;
    clearInterval(timer);
    charts.stop();
  };
}

function instanceCard(name, refresh) {
  const headingId = `plugin-${name}`;
  const summary = h('div', {});
  const history = h('div', {});
  const result = h('div', { class: 'result', 'aria-live': 'polite' });
  const charts = h('div', { class: 'charts' });
  const path = h('input', { type: 'text', name: 'path', placeholder: 'keep the configured component', spellcheck: 'false' });
  const reload = h('button', { type: 'submit', class: 'primary' }, 'Reload');
  const rollback = h('button', { type: 'button', class: 'secondary' }, 'Roll back');
  const form = h(
    'form',
    { class: 'inline-form', 'aria-label': `Reload or roll back ${name}` },
    field('Component path (optional)', path, 'A .wasm file on the host; empty reloads the configured one.'),
    h('div', { class: 'buttons' }, reload, rollback),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const body = path.value.trim() ? { path: path.value.trim() } : {};
    act(reload, result, `Reload of ${name}`, () => api.act('POST', `/plugins/${seg(name)}/reload`, body), refresh);
  });
  rollback.addEventListener('click', () => act(rollback, result, `Rollback of ${name}`, () => api.act('POST', `/plugins/${seg(name)}/rollback`), refresh));

  const el = h(
    'section',
    { class: 'card instance', 'aria-labelledby': headingId, 'data-instance': name },
    h('h2', { id: headingId }, name),
    summary,
    charts,
    form,
    result,
    history,
  );

  let last = null;
  let lastHistory = '';
  return {
    el,
    charts,
    update(p, now) {
      let rates = 'measuring…';
      if (last && now > last.now) {
        const secs = (now - last.now) / 1000;
        rates = `${((p.requests - last.requests) / secs).toFixed(1)} requests/s, ${((p.errors - last.errors) / secs).toFixed(1)} errors/s`;
      }
      last = { now, requests: p.requests, errors: p.errors };
      fill(
        summary,
        facts([
          ['Mount', p.mount],
          ['Plugin', `${p.plugin} ${p.plugin_version}`],
          ['World', p.world],
          ['Component', h('code', { title: p.component_hash }, p.component_hash.slice(0, 16))],
          ['WIT', p.wit_version],
          ['Loaded', timeMs(p.loaded_at)],
          ['Requests', String(p.requests)],
          ['Errors', String(p.errors)],
          ['Rate', rates],
          ['Store', storeUse(p.store)],
        ]),
      );
      // The table is rebuilt only when the history changed, so a screen reader's
      // place in it is not lost every refresh.
      const key = JSON.stringify(p.history);
      if (key !== lastHistory) {
        lastHistory = key;
        // Hosts that number their config generations say which one loaded each version.
        const generations = p.history.some((v) => v.config_generation !== undefined);
        const rows = [...p.history].reverse().map((v, i) => [
          i === 0 ? 'serving' : '',
          timeMs(v.loaded_at),
          v.trigger,
          `${v.plugin_version}`,
          h('code', { title: v.hash }, v.hash.slice(0, 16)),
          ...(generations ? [v.config_generation === undefined || v.config_generation === null ? '—' : String(v.config_generation)] : []),
          v.path,
        ]);
        const headers = ['', 'Loaded', 'Trigger', 'Version', 'Component', ...(generations ? ['Config generation'] : []), 'Path'];
        fill(history, table(`Version history of ${name}, newest first`, headers, rows, { class: 'history' }));
      }
    },
  };
}

/** Runs an operation, shows its answer (or its error) in `result`, then refreshes. */
async function act(button, result, what, call, after) {
  button.disabled = true;
  fill(result, h('p', { class: 'pending' }, `${what}: waiting for the host…`));
  try {
    const { answer, requestId } = await call();
    const pairs = Object.entries(answer).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
    fill(result, okBox(h('p', {}, `${what} done.`), facts([...pairs, ['Request id', h('code', {}, requestId)]])));
  } catch (e) {
    fill(result, errorBox(e, `${what} failed`));
  } finally {
    button.disabled = false;
  }
  await after();
}

/** The store's usage against its quota (`limits.store_mb`), as `GET /plugins` gives it. */
function storeUse(store) {
  if (!store) return 'unknown (storage did not answer)';
  const mib = (bytes) => `${(bytes / 1048576).toFixed(1)} MiB`;
  if (store.quota_bytes == null) return `${mib(store.bytes)}, no quota`;
  const share = Math.min(100, (100 * store.bytes) / store.quota_bytes).toFixed(0);
  return `${mib(store.bytes)} of ${mib(store.quota_bytes)} (${share}%)`;
}
