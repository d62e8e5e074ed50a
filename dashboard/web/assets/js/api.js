// Talking to the server: JSON requests with the session's CSRF token on
// every unsafe method, precise error messages, and a reconnecting
// WebSocket wrapper for live data.

let csrf = document.body ? document.body.dataset.csrf || '' : '';

export function setCSRF(token) { csrf = token || ''; }

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function errorMessage(res) {
  const text = await res.text().catch(() => '');
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    return {message: text.trim() || `${res.status} ${res.statusText}`, body: text};
  }
  const msg = (body && (body.error?.message || body.error || body.message)) || `${res.status} ${res.statusText}`;
  return {message: typeof msg === 'string' ? msg : JSON.stringify(msg), body};
}

// api sends a request and returns the decoded JSON (or null for 204).
// A 401 sends the browser to the login page, keeping the current page.
export async function api(method, path, body, {signal, raw = false, headers = {}} = {}) {
  const init = {method, credentials: 'same-origin', headers: {Accept: 'application/json', ...headers}, signal};
  if (body !== undefined) {
    if (body instanceof FormData || body instanceof Blob) {
      init.body = body;
    } else {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
  }
  if (!['GET', 'HEAD', 'OPTIONS'].includes(method)) init.headers['X-CSRF-Token'] = csrf;
  const res = await fetch(path, init);
  if (res.status === 401 && !path.startsWith('/api/auth/login')) {
    location.assign('/login?next=' + encodeURIComponent(location.pathname + location.search));
    throw new ApiError(401, 'Your session ended; sign in again.');
  }
  if (!res.ok) {
    const {message, body: errBody} = await errorMessage(res);
    throw new ApiError(res.status, message, errBody);
  }
  if (raw) return res;
  if (res.status === 204) return null;
  const type = res.headers.get('Content-Type') || '';
  return type.includes('json') ? res.json() : res.text();
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body ?? {}, opts);
export const put = (path, body, opts) => api('PUT', path, body ?? {}, opts);
export const patch = (path, body, opts) => api('PATCH', path, body ?? {}, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);

// query builds "?a=1&b=2" from an object, skipping empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v === undefined || v === null || v === '') continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.set(k, v);
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// LiveSocket keeps a WebSocket open, reconnecting with backoff, and hands
// every decoded frame to onFrame. onOpen runs after each (re)connect, so a
// page can resume from its last known state there.
export class LiveSocket {
  constructor(path, {onFrame, onOpen, onStatus} = {}) {
    this.path = path;
    this.onFrame = onFrame || (() => {});
    this.onOpen = onOpen || (() => {});
    this.onStatus = onStatus || (() => {});
    this.closed = false;
    this.backoff = 500;
    this.queue = [];
    this.connect();
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}${this.path}`;
  }

  connect() {
    if (this.closed) return;
    this.onStatus('connecting');
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.addEventListener('open', () => {
      this.backoff = 500;
      this.onStatus('open');
      const pending = this.queue.splice(0);
      for (const f of pending) ws.send(f);
      this.onOpen(this);
    });
    ws.addEventListener('message', (ev) => {
      let frame;
      try { frame = JSON.parse(ev.data); } catch { console.warn('undecodable frame', ev.data); return; }
      this.onFrame(frame);
    });
    ws.addEventListener('close', (ev) => {
      if (this.closed) return;
      this.onStatus('closed');
      if (ev.code === 1008) {
        // The server ended the socket with the session (signed out, roles
        // or password changed): /api/auth/me sends a dead session to the
        // login page; a live one reconnects with its current access.
        get('/api/auth/me').then(() => { this.timer = setTimeout(() => this.connect(), this.backoff); }, () => {});
        return;
      }
      this.timer = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    });
  }

  // send queues frames while disconnected and sends them on reconnect.
  send(frame) {
    const data = JSON.stringify(frame);
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(data);
    else this.queue.push(data);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }
}
