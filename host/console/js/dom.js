// Building the page from data without ever parsing data as HTML: every value a plugin,
// a provider or an operator typed goes in as text, so nothing it holds can run.

let nextId = 0;

/** A fresh element id, for label/input and aria-* pairs. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/**
 * h('button', {class: 'primary', onclick: fn, disabled: true}, 'Save') builds an element.
 * Attributes that are false, null or undefined are left out; children are nodes,
 * strings (as text), arrays of those, or null.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'value') {
      el.value = value;
    } else if (name === 'checked') {
      el.checked = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

/** Replaces an element's content. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form control: the label names the control for screen readers too. */
export function field(label, control, hint) {
  const id = control.id || uid('f');
  control.id = id;
  let hintEl = null;
  if (hint) {
    hintEl = h('p', { class: 'hint', id: `${id}-hint` }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

/** A definition list from [term, value] pairs. */
export function facts(pairs, attrs = {}) {
  return h('dl', { class: 'facts', ...attrs }, pairs.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)]));
}

/**
 * The admin API's error exactly as it gave it: the HTTP status, its `error` text and
 * every other field of the answer, or the raw body when it was not JSON; then the
 * request id the answer carried.
 */
export function errorBox(err, context) {
  const box = h('div', { class: 'error', role: 'alert' });
  const status = err.status ? `HTTP ${err.status}${err.statusText ? ' ' + err.statusText : ''}` : 'No answer';
  box.append(h('p', { class: 'error-title' }, context ? `${context}: ${status}` : status));
  const body = err.body;
  if (body && typeof body === 'object' && !Array.isArray(body)) {
    if ('error' in body) box.append(h('p', { class: 'error-message' }, String(body.error)));
    const rest = Object.entries(body).filter(([k]) => k !== 'error');
    if (rest.length) box.append(facts(rest.map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])));
  } else if (err.text) {
    box.append(h('pre', { class: 'error-message' }, err.text));
  } else if (err.message) {
    box.append(h('p', { class: 'error-message' }, err.message));
  }
  // Not part of the answer's body: the id to find this attempt by in the audit trail.
  if (err.requestId) box.append(h('p', { class: 'request-id' }, 'Request id ', h('code', {}, err.requestId)));
  return box;
}

/** A success note for a live region. */
export function okBox(...children) {
  return h('div', { class: 'ok' }, ...children);
}

/** Host-clock milliseconds as a readable UTC time. */
export function timeMs(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** Host-clock seconds as a readable UTC time. */
export function timeSecs(s) {
  return s === null || s === undefined ? '—' : timeMs(Number(s) * 1000);
}

/** A table with a caption and a header row; rows are arrays of cells. */
export function table(caption, headers, rows, attrs = {}) {
  return h(
    'div',
    { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h(
      'table',
      attrs,
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.length ? rows.map((cells) => h('tr', {}, cells.map((c) => h('td', {}, c))))
        : h('tr', {}, h('td', { colspan: String(headers.length), class: 'empty' }, 'nothing to show'))),
    ),
  );
}
