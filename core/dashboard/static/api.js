// The REST client of the dashboard. The API key lives in sessionStorage:
// it survives a reload of this tab, is gone when the tab closes, and is
// never put in a URL or a cookie. Every request sends it as a Bearer token.
const KEY = "wildcat.key";

export function key() { return sessionStorage.getItem(KEY) || ""; }
export function setKey(k) { sessionStorage.setItem(KEY, k); }
export function forget() { sessionStorage.removeItem(KEY); }

export class APIError extends Error {
  constructor(status, problem) {
    super(problem && (problem.detail || problem.title) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

// call sends one request; body objects go as JSON. It answers the parsed
// JSON (or null for 204), and throws an APIError with the problem document.
export async function call(method, path, body, opts = {}) {
  const headers = { Authorization: `Bearer ${key()}`, ...(opts.headers || {}) };
  let payload;
  if (body instanceof Blob || body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const res = await fetch(path, { method, headers, body: payload, signal: opts.signal, cache: "no-store" });
  if (opts.raw) {
    if (!res.ok) throw new APIError(res.status, await res.json().catch(() => null));
    return res;
  }
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new APIError(res.status, data);
  return data;
}

export const get = (path, opts) => call("GET", path, undefined, opts);
export const post = (path, body, opts) => call("POST", path, body, opts);

// blobURL fetches a keyed resource (media, the QR code's PNG) and answers
// an object URL for an <img>: an <img src> cannot send the key itself.
export async function blobURL(path, accept) {
  const res = await call("GET", path, undefined, { raw: true, headers: accept ? { Accept: accept } : {} });
  return URL.createObjectURL(await res.blob());
}

// stream reads GET /v1/events with fetch (EventSource cannot send the
// Authorization header) and calls onEvent(kind, data, id) per event. It
// reconnects with Last-Event-ID until signal aborts.
export async function stream(query, onEvent, signal, onState = () => {}) {
  let last = "";
  while (!signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${key()}`, Accept: "text/event-stream" };
      if (last) headers["Last-Event-ID"] = last;
      const res = await fetch(`/v1/events${query ? "?" + query : ""}`, { headers, signal, cache: "no-store" });
      if (!res.ok) throw new APIError(res.status, await res.json().catch(() => null));
      onState("open");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let id = "", kind = "message", data = "";
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const c = line.indexOf(":");
            const f = c < 0 ? line : line.slice(0, c);
            const v = c < 0 ? "" : line.slice(c + 1).replace(/^ /, "");
            if (f === "id") id = v;
            else if (f === "event") kind = v;
            else if (f === "data") data += (data ? "\n" : "") + v;
          }
          if (!data) continue;
          if (id) last = id;
          let parsed;
          try { parsed = JSON.parse(data); } catch { parsed = data; }
          onEvent(kind, parsed, id);
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      onState("error", e);
      if (e instanceof APIError && (e.status === 401 || e.status === 403)) return;
    }
    // Back off a little before reconnecting.
    await new Promise((r) => setTimeout(r, 1000));
  }
}
