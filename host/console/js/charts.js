// Live charts per plugin instance from GET /metrics: requests per second, p99 latency
// and errors (5xx answers) per second over the last few minutes, sampled every few
// seconds. Rates and the quantile are computed between two consecutive samples, so
// each point says what happened in that interval. Each chart also carries what it
// drew as data (`data-points`, `data-total`), which is what its text alternative says
// and what the browser tests read.

import { api } from './api.js';
import { errorBox, fill, h } from './dom.js';
import { bucketsBy, parseMetrics, quantileBetween, sumBy } from './prometheus.js';

// The metric names `host/src/metrics` registers: requests by instance and status class,
// and the request-time histogram by instance.
export const SERIES = {
  requests: 'payhost_requests_total',
  latency: 'payhost_request_duration_seconds',
  instanceLabel: 'instance',
  statusLabel: 'status',
};

const SAMPLE_MS = 2000;
const POINTS = 90;
const SPAN = `${(SAMPLE_MS * POINTS) / 60000} minutes`;

/**
 * Samples the metrics until `stop()`, drawing into `containerOf(name)` for every name
 * `instances()` gives at that moment (instances come and go with config reloads).
 */
export function startCharts(instances, containerOf) {
  let previous = null;
  const history = new Map();
  let stopped = false;
  let lastProblem = '';

  async function sample() {
    let text;
    try {
      text = await api.text('/metrics');
    } catch (e) {
      if (stopped) return;
      // Shown once, not announced again every sample: the same failure repeats.
      const problem = `${e.status} ${e.text}`;
      if (problem === lastProblem) return;
      lastProblem = problem;
      previous = null;
      for (const name of instances()) {
        const el = containerOf(name);
        if (!el) continue;
        const box = errorBox(e, 'Live charts need GET /metrics');
        box.removeAttribute('role');
        fill(el, box);
      }
      return;
    }
    if (stopped) return;
    lastProblem = '';
    const now = performance.now();
    const samples = parseMetrics(text);
    const current = {
      now,
      requests: sumBy(samples, SERIES.requests, SERIES.instanceLabel),
      errors: sumBy(samples, SERIES.requests, SERIES.instanceLabel, { [SERIES.statusLabel]: (v) => v === '5xx' }),
      buckets: bucketsBy(samples, SERIES.latency, SERIES.instanceLabel),
    };
    for (const name of instances()) {
      const points = history.get(name) || [];
      if (previous) {
        const secs = (now - previous.now) / 1000;
        // A counter that went down belongs to a restarted host: no rate for that interval.
        const rate = (m) => Math.max(0, ((current[m].get(name) || 0) - (previous[m].get(name) || 0)) / secs);
        const p99 = current.buckets.has(name) ? quantileBetween(previous.buckets.get(name), current.buckets.get(name), 0.99) : null;
        points.push({ requests: rate('requests'), errors: rate('errors'), p99: p99 === null ? null : p99 * 1000 });
        while (points.length > POINTS) points.shift();
      }
      history.set(name, points);
      const buckets = current.buckets.get(name);
      const totals = {
        requests: current.requests.get(name) || 0,
        errors: current.errors.get(name) || 0,
        observed: buckets && buckets.length ? buckets[buckets.length - 1][1] : 0,
      };
      draw(containerOf(name), name, points, totals);
    }
    previous = current;
  }

  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  return {
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}

const rateText = (v) => `${v.toFixed(1)}/s`;
const msText = (v) => `${v.toFixed(v < 10 ? 2 : 0)} ms`;

function draw(el, name, points, totals) {
  if (!el) return;
  fill(
    el,
    chart({ name, series: 'requests', title: 'requests/s', values: points.map((p) => p.requests), format: rateText, total: totals.requests, totalText: `${totals.requests} requests in all` }),
    chart({ name, series: 'p99', title: 'p99 latency', values: points.map((p) => p.p99), format: msText, total: totals.observed, totalText: `${totals.observed} timed in all` }),
    chart({ name, series: 'errors', title: 'errors/s (5xx)', values: points.map((p) => p.errors), format: rateText, total: totals.errors, totalText: `${totals.errors} errors in all`, tone: 'errors' }),
  );
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** One small line chart; its text alternative says the latest and the highest value. */
function chart({ name, series, title, values, format, total, totalText, tone = '' }) {
  const known = values.filter((v) => v !== null && Number.isFinite(v));
  const last = values.length ? values[values.length - 1] : null;
  const max = known.length ? Math.max(...known) : 0;
  const top = max > 0 ? max : 1;
  const width = 300;
  const height = 80;
  const step = width / Math.max(1, POINTS - 1);
  const offset = (POINTS - values.length) * step;
  // An interval without a value (no request timed) breaks the line rather than
  // being bridged; a value alone between two gaps is a dot.
  const runs = [[]];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      if (runs[runs.length - 1].length) runs.push([]);
      return;
    }
    runs[runs.length - 1].push([offset + i * step, height - 4 - ((height - 8) * v) / top]);
  });
  let latest;
  if (!values.length) latest = 'collecting…';
  else if (last === null || !Number.isFinite(last)) latest = 'no requests';
  else latest = format(last);
  const summary = `${name}: ${title} now ${latest}, highest ${known.length ? format(max) : 'none'} over the last ${values.length} samples (up to ${SPAN}); ${totalText}`;
  const graphic = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': summary, class: `chart ${tone}`, preserveAspectRatio: 'none' });
  graphic.append(svg('line', { x1: 0, y1: height - 4, x2: width, y2: height - 4, class: 'axis' }));
  for (const run of runs) {
    if (run.length > 1) graphic.append(svg('polyline', { points: run.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '), class: 'line' }));
    else if (run.length === 1) graphic.append(svg('circle', { cx: run[0][0].toFixed(1), cy: run[0][1].toFixed(1), r: 2.5, class: 'dot' }));
  }
  return h(
    'figure',
    {
      class: 'chart-box',
      'data-series': series,
      'data-points': JSON.stringify(values.map((v) => (v === null || !Number.isFinite(v) ? null : Number(v.toFixed(4))))),
      'data-total': String(total),
    },
    h('figcaption', {}, h('span', { class: 'chart-title' }, title), h('span', { class: 'chart-value' }, latest)),
    graphic,
    h('p', { class: 'chart-scale' }, `max ${known.length ? format(max) : '—'} · ${totalText}`),
  );
}
