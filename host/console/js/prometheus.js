// Reads the Prometheus text format that GET /metrics answers, enough for the charts:
// samples with their labels and values (comments, types and timestamps are skipped).

/** Parses exposition text into [{name, labels, value}]. */
export function parseMetrics(text) {
  const samples = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const sample = parseLine(line);
    if (sample) samples.push(sample);
  }
  return samples;
}

function parseLine(line) {
  let i = 0;
  while (i < line.length && /[A-Za-z0-9_:]/.test(line[i])) i += 1;
  const name = line.slice(0, i);
  if (!name) return null;
  const labels = {};
  if (line[i] === '{') {
    i += 1;
    while (i < line.length && line[i] !== '}') {
      const eq = line.indexOf('=', i);
      if (eq < 0) return null;
      const key = line.slice(i, eq).trim().replace(/^,/, '').trim();
      i = eq + 1;
      if (line[i] !== '"') return null;
      i += 1;
      let value = '';
      while (i < line.length && line[i] !== '"') {
        if (line[i] === '\\' && i + 1 < line.length) {
          const next = line[i + 1];
          value += next === 'n' ? '\n' : next;
          i += 2;
        } else {
          value += line[i];
          i += 1;
        }
      }
      i += 1;
      labels[key] = value;
      while (line[i] === ',' || line[i] === ' ') i += 1;
    }
    i += 1;
  }
  const rest = line.slice(i).trim().split(/\s+/);
  const value = parseValue(rest[0]);
  if (value === null) return null;
  return { name, labels, value };
}

function parseValue(text) {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const n = Number(text);
  return text !== undefined && text !== '' && !Number.isNaN(n) ? n : null;
}

/** Sum of the samples named `name` whose labels include `match`, per value of `by`. */
export function sumBy(samples, name, by, match = {}) {
  const out = new Map();
  for (const s of samples) {
    if (s.name !== name) continue;
    if (!Object.entries(match).every(([k, v]) => (typeof v === 'function' ? v(s.labels[k]) : s.labels[k] === v))) continue;
    const key = s.labels[by];
    out.set(key, (out.get(key) || 0) + s.value);
  }
  return out;
}

/**
 * Cumulative histogram buckets of `name` (`name_bucket` samples) per value of `by`:
 * Map(key -> [[le, count], ...] sorted by le).
 */
export function bucketsBy(samples, name, by) {
  const out = new Map();
  for (const s of samples) {
    if (s.name !== `${name}_bucket`) continue;
    const key = s.labels[by];
    const le = parseValue(s.labels.le);
    if (le === null) continue;
    const buckets = out.get(key) || new Map();
    buckets.set(le, (buckets.get(le) || 0) + s.value);
    out.set(key, buckets);
  }
  const sorted = new Map();
  for (const [key, buckets] of out) sorted.set(key, [...buckets].sort((a, b) => a[0] - b[0]));
  return sorted;
}

/**
 * The q-quantile of the observations between two cumulative bucket snapshots, by
 * linear interpolation inside the bucket (as Prometheus' histogram_quantile does).
 * Null when nothing was observed in between.
 */
export function quantileBetween(before, after, q) {
  const prev = new Map(before || []);
  const deltas = after.map(([le, count]) => [le, count - (prev.get(le) || 0)]);
  const total = deltas.length ? deltas[deltas.length - 1][1] : 0;
  if (!(total > 0)) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [le, count] of deltas) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      const inBucket = count - lowerCount;
      return inBucket > 0 ? lowerBound + ((le - lowerBound) * (rank - lowerCount)) / inBucket : le;
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}
