// Small helpers the benchmark scripts share: a free loopback port, a process's CPU time and children, a median.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

/** A TCP port free on 127.0.0.1 now. */
export const freePort = () => new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); }); });

/** CPU time (ms, user + system) a process has used so far, from /proc; 0 once it is gone. */
export const cpuMs = (pid) => {
  try { const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return (Number(f[11]) + Number(f[12])) * 1000 / 100; } catch { return 0; }
};

/** The pids of a process's direct children now (none once it is gone). */
export const childPids = (pid) => { try { return execFileSync('pgrep', ['-P', String(pid)]).toString().trim().split('\n').filter(Boolean).map(Number); } catch { return []; } };

export const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
