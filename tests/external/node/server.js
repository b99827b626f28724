#!/usr/bin/env node
// Node `ws` server with the wsdom conformance behaviours (tests/scenarios/README.md).
// Listens on 127.0.0.1 with an ephemeral port, prints one line `LISTENING <port>`, and runs
// until stdin reaches EOF (or SIGTERM). perMessageDeflate is off, so `extensions` stays "".
'use strict';
const path = require('path');
const { WebSocketServer } = require(path.join(__dirname, 'node_modules', 'ws'));

const PATHS = new Set(['/echo', '/protocol', '/close', '/headers', '/push', '/drop']);

function split(target) {
  const u = new URL(target, 'http://127.0.0.1');
  return [u.pathname, u.searchParams];
}
const flag = (q, name) => q.has(name) && ['1', 'true', 'yes', ''].includes(q.get(name));

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  // On the client's Close, ws replies with the same code and reason (empty body for none).
}

const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: false,
  maxPayload: 256 * 1024 * 1024,
  verifyClient: (info) => PATHS.has(split(info.req.url)[0]),
  handleProtocols: (offered, req) => {
    const [p, q] = split(req.url);
    if (p === '/protocol' && flag(q, 'none')) return false;
    if (p === '/protocol' && q.has('select') && offered.has(q.get('select'))) return q.get('select');
    const first = offered.values().next();
    return first.done ? false : first.value;
  },
});

wss.on('connection', (ws, req) => {
  const [p, q] = split(req.url);
  switch (p) {
    case '/echo':
    case '/protocol':
      echo(ws);
      break;
    case '/close':
      if (flag(q, 'empty')) ws.close();
      else ws.close(Number(q.get('code') || 1000), q.get('reason') || '');
      break;
    case '/headers': {
      const merged = {};
      for (let i = 0; i < req.rawHeaders.length; i += 2) {
        const name = req.rawHeaders[i].toLowerCase();
        const value = req.rawHeaders[i + 1];
        merged[name] = name in merged ? `${merged[name]}, ${value}` : value;
      }
      ws.send(JSON.stringify(merged));
      echo(ws);
      break;
    }
    case '/push': {
      const n = Number(q.get('n') || 1);
      const size = Number(q.get('size') || 1);
      const text = q.get('type') === 'text';
      const payload = text ? 'x'.repeat(size) : Buffer.alloc(size, 'x');
      for (let i = 0; i < n; i++) ws.send(payload, { binary: !text });
      ws.send('done');
      echo(ws);
      break;
    }
    case '/drop':
      if (flag(q, 'rst')) ws._socket.resetAndDestroy();
      else ws._socket.end();
      break;
    default:
      ws.terminate();
  }
});

wss.on('listening', () => {
  process.stdout.write(`LISTENING ${wss.address().port}\n`);
});
process.stdin.on('data', () => {});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
