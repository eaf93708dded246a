// The console's only door to the admin API. Calls go to /console/api/..., which the
// host routes to the same admin handlers as the bearer-token API, authorized by the
// HttpOnly session cookie. The CSRF value lives in this module's memory only; a reload
// of the page asks the host for it again.

let csrf = null;
let onSignedOut = () => {};

/** An admin API answer that was not a success, with everything it said. */
export class ApiError extends Error {
  constructor(status, statusText, body, text) {
    super(body && body.error ? String(body.error) : text || `HTTP ${status}`);
    this.status = status;
    this.statusText = statusText;
    this.body = body;
    this.text = text;
  }
}

/** Called when the host answers 401 to a signed-in page (session expired, restart). */
export function whenSignedOut(callback) {
  onSignedOut = callback;
}

async function request(method, url, body, { expectText = false } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-payhost-csrf'] = csrf;
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
    throw new ApiError(0, '', null, `the admin API could not be reached: ${e.message}`);
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, resp.statusText, json, text);
    if (resp.status === 401 && csrf !== null) {
      csrf = null;
      onSignedOut(err);
    }
    throw err;
  }
  return expectText ? text : json;
}

const base = '/console/api';

export const api = {
  get: (path) => request('GET', base + path),
  post: (path, body = {}) => request('POST', base + path, body),
  put: (path, body = {}) => request('PUT', base + path, body),
  text: (path) => request('GET', base + path, undefined, { expectText: true }),
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
