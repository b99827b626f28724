// Headless Chromium as a bench client: the page's own WebSocket sends the pool's messages to
// bench-server's /zsink (permessage-deflate, as Chromium offers it by default), and the sink's
// answer gives the bytes Chromium put on the wire for them. Only `--mode zsend`.
//
//   node client_chromium.mjs --mode zsend --url ws://127.0.0.1:PORT --n N --pool FILE
//
// Prints `RESULT {json}` like every client (see bench/src/lib.rs). The rate is timed inside
// the page (performance.now(), from `open` to the sink's `done`), so Playwright's round trips
// are outside it; but the browser is several processes, so it is indicative, not comparable:
// cpu_s is not measured (null).
//
// playwright-core comes from tests/browser/node_modules (tests/browser/package-lock.json; run
// `npm ci` there, which bench/run.sh does when it is missing). Browsers are never downloaded:
// Playwright drives Debian's /usr/bin/chromium (or $CHROMIUM).
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const HOST = '127.0.0.1';

function fail(why) {
  process.stderr.write(`error: ${why}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const a = {mode: null, url: null, n: 1000, pool: null};
  for (let i = 0; i + 1 < argv.length; i += 2) {
    const [k, v] = [argv[i], argv[i + 1]];
    if (k === '--mode') a.mode = v;
    else if (k === '--url') a.url = v.replace(/\/+$/, '');
    else if (k === '--n') a.n = Number(v);
    else if (k === '--pool') a.pool = v;
    else if (['--size', '--duration', '--warmup'].includes(k)) { /* not used by zsend */ }
    else fail(`unknown flag ${k}`);
  }
  if (argv.length % 2) fail('every flag needs a value');
  if (a.mode !== 'zsend') fail(`the chromium client only runs --mode zsend (got ${a.mode})`);
  if (!a.url || !a.pool || !(a.n >= 1)) fail('needs --url, --pool and --n');
  return a;
}

// The pool file format of bench/pools.py: a header line, then u32le length + bytes records.
function loadPool(file) {
  const data = fs.readFileSync(file);
  const nl = data.indexOf(10);
  const [magic, version, kind, count] = data.subarray(0, nl).toString('latin1').split(' ');
  if (magic !== 'wsdom-bench-pool' || version !== '1' || !['text', 'binary'].includes(kind)) {
    fail(`${file} is not a pool file`);
  }
  const messages = [];
  let at = nl + 1;
  for (let i = 0; i < Number(count); i++) {
    const len = data.readUInt32LE(at);
    messages.push(data.subarray(at + 4, at + 4 + len));
    at += 4 + len;
  }
  if (at !== data.length) fail(`${file} has trailing bytes`);
  const text = kind === 'text';
  const bytes = messages.map((m) => m.length);
  return {text, bytes, messages: text ? messages.map((m) => m.toString('utf8')) : messages.map((m) => m.toString('base64'))};
}

function payloadBytes(pool, n) {
  const pass = pool.bytes.reduce((s, x) => s + x, 0);
  const rest = pool.bytes.slice(0, n % pool.bytes.length).reduce((s, x) => s + x, 0);
  return pass * Math.floor(n / pool.bytes.length) + rest;
}

// Runs in the page.
function inPage({url, n, text, messages}) {
  return new Promise((resolve, reject) => {
    const data = text ? messages : messages.map((b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0)));
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    let t0 = null;
    let finished = false;
    const timer = setTimeout(() => reject(new Error('timed out in the page')), 110000);
    ws.onopen = () => {
      t0 = performance.now();
      for (let i = 0; i < n; i++) ws.send(data[i % data.length]);
    };
    ws.onmessage = (e) => {
      const t1 = performance.now();
      finished = true;
      clearTimeout(timer);
      const extensions = ws.extensions;
      ws.close();
      resolve({answer: typeof e.data === 'string' ? e.data : '(binary)', secs: (t1 - t0) / 1000, extensions});
    };
    ws.onerror = () => { if (!finished) { clearTimeout(timer); reject(new Error('WebSocket error event')); } };
    ws.onclose = (e) => { if (!finished) { clearTimeout(timer); reject(new Error(`closed before done: ${e.code}`)); } };
  });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const pool = loadPool(args.pool);
  const name = path.basename(args.pool).replace(/\.pool$/, '');
  const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) fail(`${executablePath} is missing (the bench never installs chromium)`);
  let chromium;
  try {
    ({chromium} = createRequire(path.join(ROOT, 'tests/browser/package.json'))('playwright-core'));
  } catch (e) {
    fail(`playwright-core is not installed: run npm ci in tests/browser (${e.message})`);
  }
  const web = http.createServer((req, res) => {
    res.writeHead(200, {'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store'});
    res.end('<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>wsdom bench</title>');
  });
  await new Promise((r) => web.listen(0, HOST, r));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wsdom-bench-chromium-'));
  let context = null;
  const log = [];
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    const version = context.browser() ? context.browser().version() : '';
    const page = context.pages()[0] || await context.newPage();
    page.on('console', (m) => log.push(m.text()));
    await page.goto(`http://${HOST}:${web.address().port}/`);
    const url = `${args.url}/zsink?n=${args.n}&pool=${name}`;
    const r = await page.evaluate(inPage, {url, n: args.n, text: pool.text, messages: pool.messages});
    if (!r.extensions.includes('permessage-deflate')) fail(`permessage-deflate was not negotiated (${r.extensions})`);
    const m = /^done (\d+) (\d+)$/.exec(r.answer);
    if (!m) fail(`expected 'done W R' from the sink, got ${JSON.stringify(r.answer.slice(0, 300))}`);
    const bytes = payloadBytes(pool, args.n);
    const result = {rate: args.n / r.secs, mbps: bytes / r.secs / 1e6, seconds: r.secs, cpu_s: null,
                    payload_bytes: bytes, wire_bytes: Number(m[1]), rsv1_messages: Number(m[2]),
                    browser: `Chromium ${version}`};
    process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  } catch (e) {
    fail(`${e.message}${log.length ? '\nconsole: ' + log.join('\n') : ''}`);
  } finally {
    if (context) await context.close().catch(() => {});
    web.close();
    fs.rmSync(profile, {recursive: true, force: true});
  }
}

main();
