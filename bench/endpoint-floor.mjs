// The least any server built to the design could spend on an endpoint call: a bare node:http
// server that answers every request with one fixed query's JSON from chdb, and nothing else (no
// auth, routing, templates, analyzer, logging or metrics). bench/endpoint.mjs --floor runs it
// beside Roost's endpoint and the in-process baseline, to tell what the design and the machine
// cost from what Roost's own code costs.
//   inproc: the engine in the HTTP server's process (what the design forbids: one tenant's
//           engine must run in its own process);
//   hop:    the engine in a child process, one query frame and one answer frame a request over
//           a socket pair on fd 3 (as Roost's cells are linked), so: HTTP + one process hop;
//   hop-cell-engine: hop, with the engine used as Roost's cell uses it (src/cells/cell-main.ts):
//           each session set up as the cell sets it up (max_result_bytes, parallel formatting
//           off, an empty Memory database as the current one), at most two queries inside a
//           session at once, and the SQL given with the tenant's limits in its SETTINGS clause.
// Both run the query on `sessions` chdb sessions over one data directory, the request's
// connection choosing its session, as the bench's in-process pool does.
// Usage (normally started by bench/endpoint.mjs): node bench/endpoint-floor.mjs <inproc|hop|hop-cell-engine> <port> <dataDir> <rows> <sessions> <sql>
// Prints "ready" on stdout once it listens.
import http from 'node:http';
import net from 'node:net';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Session } from 'chdb';

const [mode, portArg, dataDir, rowsArg, sessionsArg, sql] = process.argv.slice(2);
const rows = Number(rowsArg);
const cellEngine = mode === 'hop-cell-engine' || process.env.FLOOR_CELL_ENGINE === '1';
process.on('SIGTERM', () => process.exit(0));  // so 'exit' handlers run
const sessionCount = Number(sessionsArg);

// The same rows as bench/endpoint.mjs: row i is (i, COUNTRIES[i % 5], (i % 1000) / 10).
function openEngine() {
  const first = new Session(dataDir);
  first.query('CREATE TABLE IF NOT EXISTS bench_events (id UInt32, country String, v Float64) ENGINE = MergeTree ORDER BY id');
  if (Number(first.query('SELECT count() FROM bench_events', 'CSV').trim()) === 0) {
    first.query(`INSERT INTO bench_events SELECT number, ['ES','FR','DE','IT','PT'][number % 5 + 1], (number % 1000) / 10 FROM numbers(${rows})`);
  }
  const all = [first, ...Array.from({ length: sessionCount - 1 }, () => new Session(dataDir))];
  if (cellEngine) {
    for (const s of all) {
      s.query('SET max_result_bytes = 2097152, output_format_parallel_formatting = 0');
      s.query('CREATE DATABASE IF NOT EXISTS floor_none ENGINE = Memory');
      s.query('USE floor_none');
    }
  }
  return all;
}
// hop-cell-engine: at most DEPTH queries inside a session, the rest wait their turn.
const DEPTH = cellEngine ? 2 : Infinity;
const inside = [];
const waiters = [];
async function run(sessions, k) {
  const i = k % sessions.length;
  while ((inside[i] ?? 0) >= DEPTH) await new Promise((r) => (waiters[i] ??= []).push(r));
  inside[i] = (inside[i] ?? 0) + 1;
  try {
    return (await sessions[i].queryAsync(sql, { format: 'JSON' })).bytes();
  } finally {
    inside[i]--;
    waiters[i]?.shift()?.();
  }
}

if (mode === 'cell') {
  // The child: read [u32 id][u32 length] frames (the query is fixed, so a frame is only its id),
  // answer [u32 id][u32 length][JSON].
  const sessions = openEngine();
  const sock = new net.Socket({ fd: 3, readable: true, writable: true });
  let buf = Buffer.alloc(0);
  sock.on('data', (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 8) {
      const id = buf.readUInt32LE(0);
      buf = buf.subarray(8);
      run(sessions, id).then((body) => {
        const head = Buffer.allocUnsafe(8);
        head.writeUInt32LE(id, 0);
        head.writeUInt32LE(body.length, 4);
        sock.write(Buffer.concat([head, body]));
      });
    }
  });
  sock.on('close', () => process.exit(0));  // the server is gone
  sock.write('R');  // ready
} else {
  let answer;
  if (mode === 'inproc') {
    const sessions = openEngine();
    answer = (k) => run(sessions, k);
  } else if (mode === 'hop' || mode === 'hop-cell-engine') {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'cell', portArg, dataDir, rowsArg, sessionsArg, sql], {
      stdio: ['ignore', 'inherit', 'inherit', 'pipe'], env: { ...process.env, FLOOR_CELL_ENGINE: cellEngine ? '1' : '0' },
    });
    process.on('exit', () => child.kill('SIGKILL'));
    const sock = child.stdio[3];
    await new Promise((resolve) => sock.once('data', resolve));
    const waiting = new Map();
    let nextId = 0;
    let buf = Buffer.alloc(0);
    sock.on('data', (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length >= 8) {
        const len = buf.readUInt32LE(4);
        if (buf.length < 8 + len) break;
        const id = buf.readUInt32LE(0);
        const body = buf.subarray(8, 8 + len);
        buf = buf.subarray(8 + len);
        waiting.get(id)(body);
        waiting.delete(id);
      }
    });
    answer = (k) => new Promise((resolve) => {
      // The id's low bits choose the session (k), as a connection does in-process.
      const id = ((nextId++ & 0xffffff) << 4) | (k & 15);
      waiting.set(id, resolve);
      const frame = Buffer.allocUnsafe(8);
      frame.writeUInt32LE(id, 0);
      frame.writeUInt32LE(0, 4);
      sock.write(frame);
    });
  } else {
    console.error(`unknown mode ${mode}`);
    process.exit(2);
  }
  let conn = 0;
  const server = http.createServer((req, res) => {
    answer(req.socket.roostConn).then((body) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length });
      res.end(body);
    });
  });
  server.on('connection', (s) => { s.roostConn = conn++; });
  server.keepAliveTimeout = 65_000;
  server.listen(Number(portArg), '127.0.0.1', () => console.log('ready'));
}
