// Live charts per plugin instance from GET /metrics: requests per second, p99 latency
// and errors per second over the last few minutes, sampled every few seconds. Rates
// and the quantile are computed between two consecutive samples, so each point says
// what happened in that interval.

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

export function startCharts(list, instances, containerOf) {
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
    if (previous) {
      const secs = (now - previous.now) / 1000;
      for (const name of instances()) {
        const rate = (m) => Math.max(0, ((current[m].get(name) || 0) - (previous[m].get(name) || 0)) / secs);
        const p99 = current.buckets.has(name) ? quantileBetween(previous.buckets.get(name), current.buckets.get(name), 0.99) : null;
        const points = history.get(name) || [];
        points.push({ requests: rate('requests'), errors: rate('errors'), p99: p99 === null ? null : p99 * 1000 });
        while (points.length > POINTS) points.shift();
        history.set(name, points);
        draw(containerOf(name), name, points);
      }
    } else {
      for (const name of instances()) {
        const el = containerOf(name);
        if (el) fill(el, h('p', { class: 'pending' }, 'Charts start with the next sample…'));
      }
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

function draw(el, name, points) {
  if (!el) return;
  fill(
    el,
    chart(`${name}: requests per second`, points.map((p) => p.requests), (v) => `${v.toFixed(1)}/s`),
    chart(`${name}: p99 latency`, points.map((p) => p.p99), (v) => `${v.toFixed(v < 10 ? 2 : 0)} ms`),
    chart(`${name}: errors per second`, points.map((p) => p.errors), (v) => `${v.toFixed(1)}/s`, 'errors'),
  );
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** One small line chart; its text alternative says the latest and the highest value. */
function chart(title, values, format, tone = '') {
  const known = values.filter((v) => v !== null && Number.isFinite(v));
  const last = values.length ? values[values.length - 1] : null;
  const max = known.length ? Math.max(...known) : 0;
  const top = max > 0 ? max : 1;
  const width = 300;
  const height = 80;
  const step = width / Math.max(1, POINTS - 1);
  const offset = (POINTS - values.length) * step;
  const pts = [];
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) return;
    pts.push(`${(offset + i * step).toFixed(1)},${(height - 4 - ((height - 8) * v) / top).toFixed(1)}`);
  });
  const latest = last === null || !Number.isFinite(last) ? 'no requests' : format(last);
  const summary = `${title}: now ${latest}, highest ${known.length ? format(max) : 'none'} over the last ${values.length} samples`;
  const graphic = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': summary, class: `chart ${tone}`, preserveAspectRatio: 'none' });
  graphic.append(svg('line', { x1: 0, y1: height - 4, x2: width, y2: height - 4, class: 'axis' }));
  if (pts.length) graphic.append(svg('polyline', { points: pts.join(' '), class: 'line' }));
  return h(
    'figure',
    { class: 'chart-box' },
    h('figcaption', {}, h('span', { class: 'chart-title' }, title.split(': ')[1]), h('span', { class: 'chart-value' }, latest)),
    graphic,
    h('p', { class: 'chart-scale' }, `max ${known.length ? format(max) : '—'}`),
  );
}
