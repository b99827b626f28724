// Browser parity harness: runs each selected scenario in headless Chromium (the page's own
// WebSocket) and through wsdom (Python package, C library), all against the scenario server
// (tests/server), and writes one trace per client to target/browser/<client>.jsonl.
// compare.py then compares the traces. run.sh runs both; see README.md.
//
//   node harness.mjs [--clients chromium,python,c] [--only REGEX] [--workers N] [--out DIR]
//
// Environment: WSDOM_TESTSERVER (server binary), WSDOM_BROWSER_PYTHON (interpreter with
// wsdom installed), WSDOM_LIBWSDOM (libwsdom.so for the C client), CHROMIUM (browser binary).
import {spawn} from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import {fileURLToPath} from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const TABLE_DIR = path.join(ROOT, 'tests/scenarios/table');
const HOST = '127.0.0.1';
const DATA_INLINE_MAX = 1024;
const OBSERVE_SETTLE_MS = 600;

// --- arguments -------------------------------------------------------------------------------

function parseArgs(argv) {
  const a = {clients: ['chromium', 'python', 'c'], only: null, workers: Number(process.env.WSDOM_BROWSER_WORKERS || 4),
             out: path.join(ROOT, 'target/browser')};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--clients') a.clients = v().split(',').filter(Boolean);
    else if (k === '--only') a.only = new RegExp(v());
    else if (k === '--workers') a.workers = Number(v());
    else if (k === '--out') a.out = path.resolve(v());
    else throw new Error('unknown argument ' + k);
  }
  return a;
}

// --- scenarios -------------------------------------------------------------------------------

function substMatrix(v, m) {
  if (typeof v === 'string') {
    const whole = /^\{m\.([A-Za-z0-9_]+)\}$/.exec(v);
    if (whole && whole[1] in m) return m[whole[1]];
    for (const [k, val] of Object.entries(m)) v = v.split(`{m.${k}}`).join(typeof val === 'string' ? val : JSON.stringify(val));
    return v;
  }
  if (Array.isArray(v)) return v.map((x) => substMatrix(x, m));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, substMatrix(x, m)]));
  return v;
}

const OVERRIDABLE = new Set(['server', 'url', 'base_url', 'protocols', 'script', 'expect', 'observe', 'sockets']);

function expand(s) {
  if (!s.matrix) return [s];
  return s.matrix.map((m, i) => {
    const base = {...s};
    delete base.matrix;
    for (const [k, v] of Object.entries(m)) if (k in base || OVERRIDABLE.has(k)) base[k] = v;
    base.id = `${s.id}[${i}]`;
    return substMatrix(base, m);
  });
}

// What a page cannot express, for table scenarios.
function pageInexpressible(s) {
  if (s.base_url) return 'needs the base URL option (a page resolves against its own URL)';
  if (s.option_bag) return 'needs the options-bag constructor form';
  return null;
}

export function loadScenarios() {
  const table = new Map();
  for (const f of fs.readdirSync(TABLE_DIR).filter((f) => f.endsWith('.json')).sort()) {
    const doc = JSON.parse(fs.readFileSync(path.join(TABLE_DIR, f), 'utf8'));
    for (const s of doc.scenarios) table.set(s.id, {...s, group: doc.group});
  }
  const mine = JSON.parse(fs.readFileSync(path.join(HERE, 'scenarios.json'), 'utf8'));
  const runs = [];
  const seen = new Set();
  for (const item of mine.table) {
    const ref = typeof item === 'string' ? {id: item} : item;
    const s = table.get(ref.id);
    if (!s) throw new Error(`scenarios.json: table scenario ${ref.id} does not exist`);
    const why = pageInexpressible(s);
    if (why) throw new Error(`scenarios.json: table scenario ${ref.id} cannot run in a page: ${why}`);
    const merged = {...s, ...Object.fromEntries(Object.entries(ref).filter(([k]) => !['id', 'why', 'unchecked'].includes(k)))};
    for (const x of expand(merged)) {
      if (seen.has(x.id)) throw new Error('duplicate scenario id ' + x.id);
      seen.add(x.id);
      runs.push({...x, source: 'table:' + s.group});
    }
  }
  for (const s of mine.scenarios) {
    if (table.has(s.id)) throw new Error(`scenarios.json: ${s.id} is already a table scenario id`);
    for (const x of expand(s)) {
      if (seen.has(x.id)) throw new Error('duplicate scenario id ' + x.id);
      seen.add(x.id);
      runs.push({...x, source: 'browser'});
    }
  }
  return runs;
}

function subst(v, env) {
  if (typeof v === 'string') {
    return v.split('{base}').join(`ws://${env.host}:${env.port}`).split('{host}').join(env.host)
      .split('{port}').join(String(env.port)).split('{dead_port}').join(String(env.dead_port));
  }
  if (Array.isArray(v)) return v.map((x) => subst(x, env));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, subst(x, env)]));
  return v;
}

function planOf(s, env) {
  return {
    id: s.id,
    url: subst(s.url ?? ('{base}' + (s.server ?? '/')), env),
    protocols: s.protocols ?? [],
    sockets: s.sockets ?? 1,
    script: s.script ?? [],
    timeout_ms: s.timeout_ms ?? 10000,
    linger_ms: s.linger_ms ?? 100,
  };
}

// --- processes ---------------------------------------------------------------------------------

const children = new Set();
function track(child) {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}
function killChildren() {
  for (const c of children) { try { c.kill('SIGTERM'); } catch { /* gone */ } }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killChildren(); process.exit(130); });

function firstLine(child, what, timeoutMs = 20000) {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({input: child.stdout});
    const timer = setTimeout(() => reject(new Error(`${what}: no output in ${timeoutMs} ms`)), timeoutMs);
    rl.once('line', (line) => { clearTimeout(timer); rl.close(); resolve(line); });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${what} exited (${code}) before it was ready`)); });
  });
}

async function startServer(bin) {
  const child = track(spawn(bin, [], {stdio: ['pipe', 'pipe', 'inherit']}));
  const line = await firstLine(child, 'wsdom-testserver');
  const m = /^LISTENING (\d+)$/.exec(line.trim());
  if (!m) throw new Error('wsdom-testserver said: ' + line);
  return {child, port: Number(m[1]), stop: () => child.stdin.end()};
}

function deadPort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, HOST, () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

function httpGet(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({host: HOST, port, path: p, agent: false}, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
    req.on('error', reject);
    req.setTimeout(10000, () => req.destroy(new Error('timeout GET ' + p)));
  });
}

// --- what the server saw ---------------------------------------------------------------------

function sha16(buf) {
  return crypto.createHash('sha256').update(buf).digest('hex').slice(0, 16);
}

function dataOf(opcode, buf) {
  if (buf.length > DATA_INLINE_MAX) return undefined;
  if (opcode === 1) {
    try { return new TextDecoder('utf-8', {fatal: true}).decode(buf); } catch { return 'hex:' + buf.toString('hex'); }
  }
  return buf.toString('hex');
}

// One connection's record, summarised: frame structure, reassembled messages (compressed ones
// kept as their wire bytes for compare.py to inflate), control frames.
function summariseConnection(c) {
  const frames = [];
  const messages = [];
  const control = [];
  let cur = null;
  for (const f of c.frames) {
    const payload = Buffer.from(f.payload_hex, 'hex');
    frames.push({opcode: f.opcode, fin: f.fin, rsv: f.rsv, masked: f.masked, len: payload.length});
    if (f.opcode >= 8) {
      control.push({opcode: f.opcode, payload_hex: payload.length <= 256 ? f.payload_hex : undefined, len: payload.length});
      continue;
    }
    if (f.opcode === 1 || f.opcode === 2) {
      if (cur) messages.push({...finish(cur), incomplete: true});
      cur = {opcode: f.opcode, compressed: (f.rsv & 4) !== 0, parts: [], frames: 0};
    } else if (!cur) {
      messages.push({opcode: 0, stray_continuation: true, len: payload.length});
      continue;
    }
    cur.parts.push(payload);
    cur.frames++;
    if (f.fin) { messages.push(finish(cur)); cur = null; }
  }
  if (cur) messages.push({...finish(cur), incomplete: true});
  function finish(m) {
    const buf = Buffer.concat(m.parts);
    const out = {opcode: m.opcode, compressed: m.compressed, frames: m.frames, wire_len: buf.length};
    if (m.compressed) out.wire_b64 = buf.toString('base64');
    else Object.assign(out, {length: buf.length, digest: sha16(buf), data: dataOf(m.opcode, buf)});
    return out;
  }
  return {path: c.path, headers: c.headers, frames, messages, control,
          client_closed_tcp: c.client_closed_tcp, server_closed_tcp: c.server_closed_tcp, finished: c.finished};
}

// Every socket that was constructed ended with a clean close: the server has seen the client's
// Close frame, so its record of the client's frames is complete.
function cleanlyClosed(lines) {
  const built = new Set(lines.filter((l) => l.t === 'construct' && l.result === 'ok').map((l) => l.socket));
  const clean = new Set(lines.filter((l) => l.t === 'event' && l.type === 'close' && l.wasClean).map((l) => l.socket));
  return [...built].every((s) => clean.has(s));
}

// What the server saw; unless the record is surely complete, waits (up to OBSERVE_SETTLE_MS)
// until the server has finished every connection, so late frames (a failing client's Close)
// are in it.
async function observe(port, complete) {
  const deadline = Date.now() + OBSERVE_SETTLE_MS;
  let conns;
  let pause = 30;
  for (;;) {
    conns = JSON.parse(await httpGet(port, '/observed'));
    if (complete || conns.every((c) => c.finished) || Date.now() >= deadline) break;
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 200);
  }
  return {t: 'observed', connections: conns.length, conns: conns.map(summariseConnection)};
}

// --- clients -----------------------------------------------------------------------------------

async function startChromium(n) {
  const {chromium} = await import('playwright-core');
  const pageDir = path.join(HERE, 'page');
  const types = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8'};
  const web = http.createServer((req, res) => {
    const name = path.basename(new URL(req.url, 'http://x').pathname) || 'index.html';
    const file = path.join(pageDir, name);
    if (!fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, {'content-type': types[path.extname(file)] || 'application/octet-stream', 'cache-control': 'no-store'});
    res.end(fs.readFileSync(file));
  });
  await new Promise((r) => web.listen(0, HOST, r));
  const pagePort = web.address().port;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wsdom-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const version = context.browser() ? context.browser().version() : '';
  const pages = [];
  for (let i = 0; i < n; i++) {
    const page = i === 0 && context.pages().length ? context.pages()[0] : await context.newPage();
    const log = [];
    page.on('console', (m) => log.push(m.text()));
    page.on('pageerror', (e) => log.push('pageerror: ' + e.message));
    await page.goto(`http://${HOST}:${pagePort}/index.html`);
    pages.push({page, log});
  }
  return {
    name: 'chromium',
    version: version || (await pages[0].page.evaluate(() => navigator.userAgent)),
    unsupported: [],
    pagePort,
    workers: pages.map((p) => ({
      async run(plan) {
        p.log.length = 0;
        const lines = await p.page.evaluate((pl) => window.runScenario(pl), plan);
        return {lines, console: p.log.slice()};
      },
    })),
    async stop() {
      await context.close();
      web.close();
      fs.rmSync(profile, {recursive: true, force: true});
    },
  };
}

async function startWsdom(api, n) {
  const py = process.env.WSDOM_BROWSER_PYTHON || path.join(ROOT, '.venv-test/bin/python');
  const args = [path.join(HERE, 'runner_wsdom.py'), '--api', api];
  if (api === 'c') args.push('--lib', path.resolve(process.env.WSDOM_LIBWSDOM || path.join(ROOT, 'target/release/libwsdom.so')));
  const workers = [];
  let hello;
  for (let i = 0; i < n; i++) {
    const child = track(spawn(py, args, {stdio: ['pipe', 'pipe', 'inherit'], cwd: os.tmpdir()}));
    const rl = readline.createInterface({input: child.stdout, crlfDelay: Infinity});
    const queue = [];
    let waiting = null;
    let exited = null;
    rl.on('line', (l) => { if (waiting) { const w = waiting; waiting = null; w.resolve(l); } else queue.push(l); });
    child.on('exit', (code) => {
      exited = new Error(`${api} runner exited (${code})`);
      if (waiting) { const w = waiting; waiting = null; w.reject(exited); }
    });
    const next = () => new Promise((resolve, reject) => {
      if (queue.length) return resolve(queue.shift());
      if (exited) return reject(exited);
      waiting = {resolve, reject};
    });
    hello = JSON.parse(await next());
    workers.push({
      async run(plan) {
        child.stdin.write(JSON.stringify(plan) + '\n');
        const reply = JSON.parse(await next());
        return {lines: reply.lines};
      },
      stop() { child.stdin.end(); },
    });
  }
  return {name: api, version: hello.version, unsupported: hello.unsupported, workers,
          async stop() { workers.forEach((w) => w.stop()); }};
}

// --- main --------------------------------------------------------------------------------------

function skipReason(s, client) {
  if (client === 'chromium') return null;
  if (s.skip && s.skip[client]) return s.skip[client];
  const ops = new Set((s.script || []).flatMap((step) => step.do.map((a) => Object.keys(a)[0])));
  if (client === 'c' && ops.has('set_binary_type')) return 'the C API has no binaryType (binary messages are bytes)';
  if (client === 'c' && ops.has('send_blob')) return 'the C API has no Blob';
  return null;
}

async function runClient(client, runs, opts, bin) {
  // Chromium is the slowest client (page round trips, one connecting socket per host:port): it
  // gets more workers, so that all clients end at about the same time.
  const want = client === 'chromium' ? Math.ceil(opts.workers * 1.5) : opts.workers;
  const n = Math.max(1, Math.min(want, runs.length));
  const servers = await Promise.all(Array.from({length: n}, () => startServer(bin)));
  const driver = client === 'chromium' ? await startChromium(n) : await startWsdom(client, n);
  const dead = await deadPort();
  const results = new Map();
  // Longest first, so the slow scenarios overlap with the many short ones.
  const queue = [...runs].sort((a, b) => (b.est_ms ?? 0) - (a.est_ms ?? 0));
  const t0 = Date.now();
  await Promise.all(driver.workers.map(async (w, i) => {
    const port = servers[i].port;
    for (;;) {
      const s = queue.shift();
      if (!s) return;
      const env = {host: HOST, port, dead_port: dead};
      const start = {t: 'start', id: s.id, client, host: HOST, port, dead_port: dead, page_port: driver.pagePort ?? null};
      const skip = skipReason(s, client);
      if (skip) { results.set(s.id, [start, {t: 'end', result: 'skip', reason: skip}]); continue; }
      await httpGet(port, '/observed?clear=1');
      const plan = planOf(s, env);
      const began = Date.now();
      let out;
      try {
        out = await w.run(plan);
      } catch (e) {
        results.set(s.id, [start, {t: 'end', result: 'error', reason: String(e && e.stack || e)}]);
        continue;
      }
      const ranMs = Date.now() - began;
      const observed = await observe(port, cleanlyClosed(out.lines));
      const end = {t: 'end', result: 'ran', ms: Date.now() - began, run_ms: ranMs};
      if (out.console && out.console.length) end.console = out.console;
      results.set(s.id, [start, ...out.lines, observed, end]);
    }
  }));
  const elapsed = Date.now() - t0;
  await driver.stop();
  servers.forEach((s) => s.stop());
  const file = path.join(opts.out, `${client}.jsonl`);
  const lines = [JSON.stringify({t: 'driver', client, version: driver.version, unsupported_fields: driver.unsupported,
                                 workers: n, elapsed_ms: elapsed})];
  for (const s of runs) {
    for (const l of results.get(s.id) || []) lines.push(JSON.stringify({id: s.id, client, ...l}));
  }
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return {client, file, elapsed, version: driver.version};
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  fs.mkdirSync(opts.out, {recursive: true});
  let runs = loadScenarios();
  if (opts.only) runs = runs.filter((s) => opts.only.test(s.id));
  fs.writeFileSync(path.join(opts.out, 'scenarios.json'),
                   JSON.stringify(runs.map((s) => ({id: s.id, source: s.source, title: s.title, server: s.server ?? null,
                                                     url: s.url ?? null, protocols: s.protocols ?? []})), null, 1));
  const bin = path.resolve(process.env.WSDOM_TESTSERVER || path.join(ROOT, 'target/debug/wsdom-testserver'));
  console.log(`harness: ${runs.length} scenario runs; clients ${opts.clients.join(', ')}; ${opts.workers} workers each (Chromium ${Math.ceil(opts.workers * 1.5)})`);
  // Chromium and the wsdom clients run at the same time, each with its own servers.
  const done = await Promise.all(opts.clients.map((c) => runClient(c, runs, opts, bin)));
  for (const d of done) console.log(`harness: ${d.client}${d.version ? ' ' + d.version : ''}: ${(d.elapsed / 1000).toFixed(1)} s -> ${path.relative(ROOT, d.file)}`);
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(2); });
