// Calls of the public REST API (/v1/...) with the signed-in user's API key.

const keyName = 'havip-console.key';

// ApiError is a refused or failed call: the HTTP status, the reason code, the message and the
// request ID the gateway gave it.
export class ApiError extends Error {
  constructor(status, body, requestId) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.reason = body.reason || '';
    this.requestId = body.request_id || requestId || '';
  }
}

// key is the API key of the session (sessionStorage: gone when the tab closes).
export function key() {
  return sessionStorage.getItem(keyName) || '';
}

export function setKey(k) {
  if (k) sessionStorage.setItem(keyName, k);
  else sessionStorage.removeItem(keyName);
}

let onUnauthorized = () => {};
// whenUnauthorized sets what happens when the key stops being accepted (revoked): sign out.
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

// call sends one request; withKey overrides the session's key (signing in).
export async function call(method, path, body, withKey) {
  const headers = { Authorization: `Bearer ${withKey ?? key()}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(`/v1${path}`, init);
  const text = await resp.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = {};
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data, resp.headers.get('X-Request-Id'));
    if (resp.status === 401 && withKey === undefined) onUnauthorized();
    throw err;
  }
  return data;
}

// query builds a query string from params, leaving out empty values; filters become
// filter.<name>=<value>.
export function query(params, filters) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== '' && v !== undefined && v !== null) q.set(k, v);
  for (const [k, v] of Object.entries(filters || {})) if (v) q.set(`filter.${k}`, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
