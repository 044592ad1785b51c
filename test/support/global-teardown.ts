/** Jest global teardown: stops the per-worker PostgreSQL servers and removes their files. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RUN_DIR_ENV, stopServerIn } from './postgres';

export default async function globalTeardown(): Promise<void> {
  const run = process.env[RUN_DIR_ENV];
  if (!run || !fs.existsSync(run)) return;
  await Promise.all(fs.readdirSync(run).map((worker) => stopServerIn(path.join(run, worker))));
  fs.rmSync(run, { recursive: true, force: true });
}
