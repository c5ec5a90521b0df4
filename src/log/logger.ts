/** JSON lines on stdout, one object per event: `{time, level, msg, ...fields}`. */
import { isoTime } from '../service/time.js';

export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const RANK: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export function createLogger(level: Level, base: Record<string, unknown> = {}, out: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const min = RANK[level];
  const emit = (lvl: Level, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[lvl] < min) return;
    const rec: Record<string, unknown> = { time: isoTime(), level: lvl, msg, ...base, ...fields };
    const err = rec.err;
    if (err instanceof Error) {
      const cause = (err as { cause?: unknown }).cause;
      rec.err = {
        name: err.name, message: err.message, stack: err.stack, code: (err as { code?: unknown }).code,
        // Cut: a cause may be a whole page a proxy answered, logged at every request of an outage.
        ...(cause instanceof Error ? { cause: { name: cause.name, message: cause.message.length > 2048 ? `${cause.message.slice(0, 2048)}…[truncated, ${cause.message.length} chars]` : cause.message, code: (cause as { code?: unknown }).code } } : {}),
      };
    }
    out(JSON.stringify(rec) + '\n');
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    child: (f) => createLogger(level, { ...base, ...f }, out),
  };
}
