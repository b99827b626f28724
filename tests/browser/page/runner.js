// The in-page scenario runner: runs one scenario with the browser's own WebSocket and returns
// its trace (the JSON-lines entries of tests/scenarios/README.md, plus the browser-parity
// additions of tests/browser/README.md). Loaded by index.html; called by harness.mjs through
// Playwright as `await window.runScenario(plan)`.
//
// The Python and C runners (runner_wsdom.py) implement exactly the same semantics; keep the
// three in step.
'use strict';

const DATA_INLINE_MAX = 1024;

// --- values ------------------------------------------------------------------------------

function textOf(v) {
  if (typeof v === 'string') return v;
  if ('repeat' in v) return v.repeat.repeat(v.count);
  if ('utf16' in v) {
    let s = '';
    for (let i = 0; i < v.utf16.length; i += 4096) s += String.fromCharCode(...v.utf16.slice(i, i + 4096));
    return s;
  }
  throw new Error('not a text value: ' + JSON.stringify(v));
}

function isTextSpec(v) {
  return typeof v === 'string' || 'repeat' in v || 'utf16' in v;
}

function hexToBytes(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(2 * i, 2), 16);
  return out;
}

// The whole buffer of a BYTES value ("times" repeats it); a send applies "view" [offset, length].
function bytesOf(v) {
  let b;
  if ('hex' in v) b = hexToBytes(v.hex);
  else if ('length' in v) { b = new Uint8Array(v.length); for (let i = 0; i < v.length; i++) b[i] = i & 0xff; }
  else if ('fill_hex' in v) {
    const unit = hexToBytes(v.fill_hex);
    b = new Uint8Array(unit.length * v.count);
    for (let i = 0; i < b.length; i++) b[i] = unit[i % unit.length];
  } else if ('lcg' in v) {
    // Pseudo-random bytes: x = (x * 1103515245 + 12345) mod 2^31 from x = 1, byte = x >> 16.
    b = new Uint8Array(v.lcg);
    let x = 1;
    for (let i = 0; i < b.length; i++) { x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff; b[i] = (x >>> 16) & 0xff; }
  } else throw new Error('not a bytes value: ' + JSON.stringify(v));
  if (v.times > 1) {
    const r = new Uint8Array(b.length * v.times);
    for (let i = 0; i < v.times; i++) r.set(b, i * b.length);
    b = r;
  }
  return b;
}

function toHex(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
  return s;
}

// First 16 hex digits of SHA-256: the payload digest every runner records (asynchronous here).
async function digest(bytes) {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return toHex(d.subarray(0, 8));
}

const encoder = new TextEncoder();

// --- the runner ----------------------------------------------------------------------------

// Sockets of earlier runs still open when their run ended (timeout): closed when the next run
// starts, after harness.mjs read /observed, so their Close frames are not in that record.
const leftovers = [];

window.runScenario = async function runScenario(plan) {
  while (leftovers.length) {
    try { leftovers.pop().close(); } catch (e) { /* ignore */ }
  }
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  const nsock = plan.sockets || 1;
  const socks = [];     // {ws, lines, closed, msgCount}
  const pending = [];   // promises that fill in message data (Blob reads)
  let finished = false;
  let closedCount = 0;
  let resolveAllClosed;
  const allClosed = new Promise((r) => { resolveAllClosed = r; });

  function attrs(ws) {
    return {readyState: ws.readyState, bufferedAmount: ws.bufferedAmount,
            protocol: ws.protocol, extensions: ws.extensions};
  }

  function record(sock, entry) {
    entry.ms = ms();
    entry.seq = sock.lines.length;
    sock.lines.push(entry);
    return entry;
  }

  function describeMessage(entry, data) {
    if (typeof data === 'string') {
      const b = encoder.encode(data);
      entry.data_type = 'text';
      entry.length = b.length;
      pending.push(digest(b).then((d) => { entry.digest = d; }));
      if (b.length <= DATA_INLINE_MAX) entry.data = data;
    } else {
      entry.data_type = 'binary';
      const fill = (bytes) => {
        entry.length = bytes.length;
        if (bytes.length <= DATA_INLINE_MAX) entry.data = toHex(bytes);
        return digest(bytes).then((d) => { entry.digest = d; });
      };
      if (data instanceof ArrayBuffer) {
        entry.binary_type = 'arraybuffer';
        pending.push(fill(new Uint8Array(data.slice(0))));
      } else if (data instanceof Blob) {
        entry.binary_type = 'blob';
        entry.length = data.size;
        pending.push(data.arrayBuffer().then((ab) => fill(new Uint8Array(ab))));
      } else {
        entry.binary_type = 'unknown:' + Object.prototype.toString.call(data);
      }
    }
  }

  function runActions(sock, actions) {
    for (const a of actions) {
      const [op, arg] = Object.entries(a)[0];
      const ws = sock.ws;
      const entry = {t: 'action', op: op === 'sleep_ms' ? 'sleep' : op};
      try {
        switch (op) {
          case 'send_text': ws.send(textOf(arg)); break;
          case 'send_binary': {
            const b = bytesOf(arg);
            if (arg.view) ws.send(new Uint8Array(b.buffer, arg.view[0], arg.view[1]));
            else ws.send(b.buffer);
            break;
          }
          case 'send_text_many': { const t = textOf(arg.text); for (let i = 0; i < arg.count; i++) ws.send(t); break; }
          case 'send_binary_many': {
            const b = bytesOf(arg.bytes);
            for (let i = 0; i < arg.count; i++) ws.send(b.slice().buffer);
            break;
          }
          case 'send_blob':
            ws.send(new Blob([isTextSpec(arg) ? textOf(arg) : bytesOf(arg)]));
            break;
          case 'close':
            // Codes go in unclamped: WebIDL's [Clamp] does what the table asks of other drivers.
            if ('code' in arg && 'reason' in arg) ws.close(arg.code, textOf(arg.reason));
            else if ('code' in arg) ws.close(arg.code);
            else if ('reason' in arg) ws.close(undefined, textOf(arg.reason));
            else ws.close();
            break;
          case 'sleep_ms': { const end = performance.now() + arg; while (performance.now() < end) { /* block */ } break; }
          case 'snapshot':
            Object.assign(entry, {protocol: ws.protocol, extensions: ws.extensions, url: ws.url,
                                  binary_type: ws.binaryType});
            break;
          case 'set_binary_type': ws.binaryType = arg; break;
          case 'constants':
            entry.values = [WebSocket.CONNECTING, WebSocket.OPEN, WebSocket.CLOSING, WebSocket.CLOSED];
            break;
          default: throw new Error('unknown action ' + op);
        }
        entry.result = 'ok';
      } catch (e) {
        entry.result = (e && e.name) || String(e);
        entry.detail = String(e && e.message);
      }
      entry.readyState = ws.readyState;
      entry.bufferedAmount = ws.bufferedAmount;
      record(sock, entry);
    }
  }

  function trigger(sock, on, n) {
    for (const step of plan.script || []) {
      if (step.on !== on) continue;
      if (on === 'message' && (step.n || 1) !== n) continue;
      runActions(sock, step.do);
    }
  }

  function onEvent(sock, ev) {
    if (finished) return;
    const ws = sock.ws;
    const entry = {t: 'event', type: ev.type, ...attrs(ws), target_ok: ev.target === ws && ev.currentTarget === ws};
    if (ev.type === 'message') {
      describeMessage(entry, ev.data);
      entry.origin = ev.origin;
    } else if (ev.type === 'close') {
      Object.assign(entry, {code: ev.code, reason: ev.reason, wasClean: ev.wasClean});
    }
    record(sock, entry);
    if (ev.type === 'message') trigger(sock, 'message', ++sock.msgCount);
    else trigger(sock, ev.type);
    if (ev.type === 'close' && !sock.closed) {
      sock.closed = true;
      if (++closedCount === socks.length) resolveAllClosed();
    }
  }

  for (let i = 0; i < nsock; i++) {
    const sock = {ws: null, lines: [], closed: false, msgCount: 0};
    const entry = {t: 'construct'};
    try {
      const args = [plan.url];
      if (plan.protocols !== undefined && plan.protocols !== null &&
          !(Array.isArray(plan.protocols) && plan.protocols.length === 0)) args.push(plan.protocols);
      sock.ws = new WebSocket(...args);
      entry.result = 'ok';
      Object.assign(entry, {url: sock.ws.url, ...attrs(sock.ws), binary_type: sock.ws.binaryType});
    } catch (e) {
      entry.result = (e && e.name) || String(e);
      entry.detail = String(e && e.message);
    }
    record(sock, entry);
    if (sock.ws) {
      socks.push(sock);
      for (const type of ['open', 'message', 'error', 'close']) {
        sock.ws.addEventListener(type, (ev) => onEvent(sock, ev));
      }
      trigger(sock, 'construct');
    } else {
      sock.closed = true;
      socks.push(sock);
      closedCount++;
    }
  }
  if (closedCount === socks.length) resolveAllClosed();

  const timers = [];
  for (const step of plan.script || []) {
    if (step.on !== 'timer') continue;
    timers.push(setTimeout(() => {
      if (finished) return;
      for (const sock of socks) if (sock.ws) runActions(sock, step.do);
    }, step.after_ms));
  }

  const timeout = new Promise((r) => setTimeout(() => r('timeout'), plan.timeout_ms || 10000));
  const how = await Promise.race([allClosed.then(() => 'closed'), timeout]);
  if (how === 'closed') await new Promise((r) => setTimeout(r, plan.linger_ms ?? 100));
  finished = true;
  timers.forEach(clearTimeout);
  for (const sock of socks) {
    if (!sock.closed) {
      record(sock, {t: 'timeout', ...attrs(sock.ws)});
      leftovers.push(sock.ws);
    }
  }
  await Promise.all(pending);
  const out = [];
  socks.forEach((sock, i) => sock.lines.forEach((l) => { l.socket = i; out.push(l); }));
  return out;
};
