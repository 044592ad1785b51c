/**
 * Jest global setup: a directory for this run's per-worker PostgreSQL servers (see postgres.ts),
 * inherited by the workers through the environment. Servers of runs that ended without their
 * teardown (interrupted) are stopped here.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { RUN_DIR_ENV, stopServerIn } from './postgres';

const PREFIX = 'bulwark-pg-run-';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export default async function globalSetup(): Promise<void> {
  for (const name of fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith(PREFIX))) {
    const dir = path.join(os.tmpdir(), name);
    const owner = Number(/^bulwark-pg-run-(\d+)-/.exec(name)?.[1]);
    if (!Number.isInteger(owner) || alive(owner)) continue;
    try {
      for (const worker of fs.readdirSync(dir)) await stopServerIn(path.join(dir, worker));
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {
      // Another user's or a concurrent cleanup's: not ours to insist on.
    }
  }
  const run = fs.mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${process.pid}-`));
  // The servers run as `nobody` under root and must be able to enter their directories.
  fs.chmodSync(run, 0o755);
  process.env[RUN_DIR_ENV] = run;
}
