/**
 * `roost` command line. `roost serve` runs the server; the operator's commands
 * (tenant, workspace, backup, restore) talk to a running server over HTTP;
 * `--help` lists every command and option.
 */
import v8 from 'node:v8';
import { ConfigError, helpText, loadConfig } from './config.js';
import { StartRefused } from './errors.js';
import { ADMIN_USAGE, runAdminCommand } from '../tenants/admin-cli.js';

const USAGE = `roost — ClickHouse as an API, on your own machines

usage:
  roost serve [options]     run the server (npm start runs: roost serve --dev)
${ADMIN_USAGE}
  roost --help              this text

server options (flags win over environment variables):
${helpText()}
`;

/** V8's old-generation growth factor for the server, as a percentage over 1 (300: 4x). */
export const HEAP_GROWING_PERCENT = 300;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    // Asked for, the usage is output; a missing command is an error, said on stderr.
    (cmd ? process.stdout : process.stderr).write(USAGE);
    return cmd ? 0 : 1;
  }
  if (cmd === 'serve') {
    if (rest.includes('--help') || rest.includes('-h')) { process.stdout.write(USAGE); return 0; }
    let config;
    try {
      config = loadConfig(rest);
    } catch (e) {
      if (e instanceof ConfigError) { process.stderr.write(`roost: ${e.message}\n`); return 2; }
      throw e;
    }
    // Logs go to stdout; a reader that goes away (a closed pipe) must not take the server down.
    process.stdout.on('error', () => {});
    // V8 counts the external memory allocated since its last full collection (request body
    // chunks, the CSV batches) against the old generation's limit. The server's heap is small
    // (~16 MB live) and an upload allocates ~1.6 bytes of such memory per body byte, so with
    // V8's usual heap growth it ran about three full collections per 48 MB upload, a quarter of
    // the server's CPU; growing the limit to 4x the live heap (V8's own largest factor) leaves
    // under one (docs/decisions.md, "The server's heap grows 4x").
    v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    let app;
    try {
      // Loaded here: the operator's commands need none of the server (it tripled their start-up time).
      const { startApp } = await import('./app.js');
      app = await startApp(config);
    } catch (e) {
      if (e instanceof StartRefused) { process.stderr.write(`roost: ${e.message}\n`); return 1; }
      const listenCode = (e as NodeJS.ErrnoException).code;
      if ((e as NodeJS.ErrnoException).syscall === 'listen' && listenCode) {
        const why = listenCode === 'EADDRINUSE' ? 'is in use by another program' : listenCode === 'EACCES' ? 'needs privileges this user lacks (ports below 1024)' : listenCode === 'EADDRNOTAVAIL' ? 'names an address this machine does not have' : 'cannot be listened on';
        const fix = listenCode === 'EADDRINUSE' ? 'stop what listens there, or choose another port with --port / ROOST_PORT' : listenCode === 'EACCES' ? 'choose a port from 1024 up with --port / ROOST_PORT (or give the server the privilege)' : 'choose another address with --host / ROOST_HOST (or port with --port / ROOST_PORT)';
        process.stderr.write(`roost: ${config.host} port ${config.port} ${why} (${listenCode}); ${fix}\n`);
        // (Everything the start began is stopped; a handle left over must not keep a failed start alive.)
        setTimeout(() => process.exit(1), 2000).unref();
        return 1;
      }
      // The data directory not writable or not there (permissions, a read-only disk): one line
      // naming the path and what to do, not a stack trace.
      let code = (e as NodeJS.ErrnoException).code ?? ((e as { cause?: NodeJS.ErrnoException }).cause)?.code;
      // (The data directory's lock, taken by the native addon, says it in words only.)
      const words = /Permission denied|Read-only file system|Operation not permitted/.exec((e as Error).message ?? '');
      if (!code && words) code = { 'Permission denied': 'EACCES', 'Read-only file system': 'EROFS', 'Operation not permitted': 'EPERM' }[words[0]];
      // A data directory that is a file (or under one): said as such, not as a permission to give.
      if (code === 'EEXIST' || code === 'ENOTDIR') {
        process.stderr.write(`roost: the data directory ${config.dataDir} is not a directory (${code}: it, or a directory above it, is a file); choose another with --data / ROOST_DATA\n`);
        return 1;
      }
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
        process.stderr.write(`roost: the host ${config.host} does not resolve to an address of this machine (${code}); give --host / ROOST_HOST an address or a name that resolves\n`);
        return 2;
      }
      if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOENT' || code === 'ENOSPC') {
        process.stderr.write(`roost: cannot use the data directory ${config.dataDir} (${code}): ${(e as Error).message}; give the server's user write access to it (or choose another with --data)\n`);
        return 1;
      }
      throw e;
    }
    await new Promise<void>((resolve) => {
      const onSignal = (sig: string) => { void app.stop(sig).then(resolve); };
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      process.once('SIGINT', () => onSignal('SIGINT'));
    });
    // Stopped (state closed, engines closed, the directory's lock released): work still under way
    // past the grace (a request already answered 408 that goes on) no longer keeps the process
    // alive beyond a moment for the logs to drain.
    setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref();
    return 0;
  }
  const admin = await runAdminCommand(argv);
  if (admin !== undefined) return admin;
  // One line and exit 1, as every other CLI failure (the README's promise); the usage is asked
  // for with --help.
  process.stderr.write(`roost: unknown command "${cmd}"; commands: serve, tenant, workspace, backup, restore (see roost --help)\n`);
  return 1;
}
