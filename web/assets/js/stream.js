// Live updates: server-sent events for deployment changes, and streamed
// HTTP responses for logs.

// Event types pushed by the server (server/deploy/events.go).
// "deployment" carries the full representation when a per-deployment stream
// opens (and after each reconnect); "hello" opens the all-deployments stream.
export const EVENT_TYPES = ['deployment', 'hello', 'deployment.status', 'step.status', 'step.log', 'service.state', 'deployment.ttl'];

// subscribe opens an EventSource on /api/v1 + path and calls onEvent with
// each decoded event. Events may arrive as named SSE events or as plain
// "message" events carrying a "type" field. EventSource reconnects by
// itself; onState reports 'open' / 'reconnecting'. Returns close().
export function subscribe(path, onEvent, onState = () => {}) {
  const es = new EventSource('/api/v1' + path, { withCredentials: true });
  const handle = (ev) => {
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    if (!data.type && ev.type !== 'message') data.type = ev.type;
    onEvent(data);
  };
  es.addEventListener('message', handle);
  for (const t of EVENT_TYPES) es.addEventListener(t, handle);
  es.addEventListener('open', () => onState('open'));
  es.addEventListener('error', () => onState(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting'));
  return () => es.close();
}

// streamLines GETs /api/v1 + path and calls onLine for every line of the
// response as it arrives (a followed log). Server-sent-event framing is
// unwrapped when the server uses it; JSON lines with a "line" / "chunk" /
// "message" field are reduced to their text. Resolves when the stream ends;
// abort with signal.
export async function streamLines(path, onLine, signal) {
  const res = await fetch('/api/v1' + path, { credentials: 'same-origin', signal, headers: { Accept: 'text/plain' } });
  if (!res.ok) {
    let msg = `${res.status} ${res.statusText}`;
    try { const j = await res.json(); if (j.error) msg = j.error.message; } catch { /* keep status text */ }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  const sse = (res.headers.get('Content-Type') || '').includes('text/event-stream');
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += value;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      let line = buf.slice(0, i).replace(/\r$/, '');
      buf = buf.slice(i + 1);
      if (sse) {
        if (!line.startsWith('data:')) continue;
        line = line.slice(5).replace(/^ /, '');
      }
      onLine(unwrap(line));
    }
  }
  if (buf) onLine(unwrap(buf));
}

function unwrap(line) {
  if (!line.startsWith('{')) return line;
  try {
    const j = JSON.parse(line);
    const text = j.line ?? j.chunk ?? j.message ?? j.text;
    if (typeof text !== 'string') return line;
    return j.stream === 'stderr' ? text : text;
  } catch {
    return line;
  }
}
