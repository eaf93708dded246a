// The console's only door to the admin API. Calls go to /console/api/..., which the
// host routes to the same admin handlers as the bearer-token API, authorized by the
// HttpOnly session cookie. The CSRF value lives in this module's memory only; a reload
// of the page asks the host for it again.
//
// Every state-changing call carries a request id the page makes up (`console-<uuid>`),
// which the host keeps in the audit trail: the operator can look the action up by it,
// even when its answer never arrived.

let csrf = null;
let onSignedOut = () => {};

/** An admin API answer that was not a success, with everything it said. */
export class ApiError extends Error {
  constructor(status, statusText, body, text, requestId = null) {
    super(body && body.error ? String(body.error) : text || `HTTP ${status}`);
    this.status = status;
    this.statusText = statusText;
    this.body = body;
    this.text = text;
    this.requestId = requestId;
  }
}

/**
 * A fresh `console-<32 hex>` id. `crypto.getRandomValues` rather than `randomUUID`:
 * the latter exists only in secure contexts, and an admin listener reached by address
 * over plain HTTP is not one.
 */
export function newConsoleId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `console-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** Called when the host answers 401 to a signed-in page (session expired, restart). */
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

/** Resolves to `{answer, requestId}`; `answer` is the parsed JSON (or the text). */
async function exchange(method, url, body, { expectText = false } = {}) {
  const headers = {};
  const sentId = method === 'GET' ? null : newConsoleId();
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-payhost-csrf'] = csrf;
  if (sentId) headers['x-request-id'] = sentId;
  let resp;
  try {
    resp = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, '', null, `the admin API could not be reached: ${e.message}`, sentId);
  }
  const requestId = resp.headers.get('x-request-id') || sentId;
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, resp.statusText, json, text, requestId);
    if (resp.status === 401 && csrf !== null) {
      csrf = null;
      onSignedOut(err);
    }
    throw err;
  }
  return { answer: expectText ? text : json, requestId };
}

async function request(method, url, body, options) {
  return (await exchange(method, url, body, options)).answer;
}

const base = '/console/api';

export const api = {
  get: (path) => request('GET', base + path),
  post: (path, body = {}) => request('POST', base + path, body),
  put: (path, body = {}) => request('PUT', base + path, body),
  text: (path) => request('GET', base + path, undefined, { expectText: true }),
  /** A state-changing call whose request id the page shows: `{answer, requestId}`. */
  act: (method, path, body = {}) => exchange(method, base + path, body),
};

/** Trades the admin token for a session; the token is not kept anywhere. */
export async function signIn(token) {
  const answer = await request('POST', '/console/sign-in', { token });
  csrf = answer.csrf;
}

/** Picks up a session this browser already has; false when there is none. */
export async function resume() {
  try {
    const answer = await request('GET', '/console/session');
    csrf = answer.csrf;
    return true;
  } catch (e) {
    if (e.status === 401) return false;
    throw e;
  }
}

export async function signOut() {
  try {
    await request('POST', '/console/sign-out');
  } finally {
    csrf = null;
  }
}

/** Encodes one path segment (account ids, instance names). */
export function seg(value) {
  return encodeURIComponent(value);
}
