/**
 * The test PostgreSQL works from any checkout location. Under root the server runs as `nobody`,
 * which cannot enter a directory of mode 0700 (a home directory, say): the binaries are then run
 * from a copy it can reach, and when the server still cannot start the error says which path and
 * why (never "initdb failed: null").
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { APP_ROLE, serverBinDir, startPostgres, unreachable } from './postgres';

const asRoot = process.getuid?.() === 0;
const NOBODY = { uid: 65534, gid: 65534 };

describe('PostgreSQL from a checkout the server user cannot enter', () => {
  let closed: string;
  let open: string;
  beforeAll(() => {
    closed = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-closed-'));
    fs.chmodSync(closed, 0o700);
    open = fs.mkdtempSync(path.join(os.tmpdir(), 'bulwark-open-'));
    fs.chmodSync(open, 0o755);
  });
  afterAll(() => {
    fs.rmSync(closed, { recursive: true, force: true });
    fs.rmSync(open, { recursive: true, force: true });
  });

  it('names the directory that blocks a user, and its mode', () => {
    fs.mkdirSync(path.join(closed, 'checkout', 'bin'), { recursive: true });
    expect(unreachable(path.join(closed, 'checkout', 'bin'), NOBODY)).toEqual({
      path: closed,
      problem: expect.stringMatching(/^is mode 0700 owned by uid \d+ gid \d+, so uid 65534 cannot enter it$/),
    });
    expect(unreachable(open, NOBODY)).toBeUndefined();
    expect(unreachable(path.join(open, 'missing'), NOBODY)).toEqual({
      path: path.join(open, 'missing'),
      problem: 'cannot be read (ENOENT)',
    });
  });

  it('runs the binaries from a copy the server user can reach', async () => {
    // The installation inside the closed directory, as if the checkout lived there.
    const installed = path.dirname(serverBinDir());
    const native = path.join(closed, 'native');
    // Hard links where the file system allows them, a copy otherwise.
    if (spawnSync('cp', ['-al', installed, native]).status !== 0) {
      fs.rmSync(native, { recursive: true, force: true });
      expect(spawnSync('cp', ['-a', installed, native], { encoding: 'utf8' }).stderr).toBe('');
    }
    const before = process.env.PG_BIN_DIR;
    process.env.PG_BIN_DIR = path.join(native, 'bin');
    let copy: string | undefined;
    try {
      const bin = serverBinDir();
      if (asRoot) {
        expect(bin.startsWith(closed)).toBe(false);
        expect(unreachable(path.join(bin, 'postgres'), NOBODY)).toBeUndefined();
        copy = path.dirname(bin);
      } else {
        expect(bin).toBe(path.join(native, 'bin')); // the server runs as us, who can enter it
      }
      const pg = await startPostgres({ migrate: false, ownServer: true });
      try {
        const c = await pg.client(APP_ROLE);
        expect((await c.query('SELECT current_user AS u')).rows).toEqual([{ u: APP_ROLE }]);
        await c.end();
      } finally {
        await pg.stop();
      }
    } finally {
      if (before === undefined) delete process.env.PG_BIN_DIR;
      else process.env.PG_BIN_DIR = before;
      if (copy) fs.rmSync(copy, { recursive: true, force: true });
    }
  });

  it('says which path the server user cannot reach when the data directory is out of its reach', async () => {
    const before = process.env.TMPDIR;
    process.env.TMPDIR = closed;
    try {
      // Started (and stopped at once) or refused with its reason.
      const outcome = await startPostgres({ migrate: false, ownServer: true }).then(
        async (pg) => {
          await pg.stop();
          return 'started';
        },
        (e: Error) => e.message,
      );
      if (asRoot) {
        expect(outcome).toMatch(
          new RegExp(
            `cannot reach its data directory .*: ${closed} is mode 0700 owned by uid 0 gid 0, so uid 65534 cannot enter it`,
          ),
        );
      } else {
        expect(outcome).toBe('started'); // the server runs as us, who can enter it
      }
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
    }
    expect(fs.readdirSync(closed).filter((n) => n.startsWith('bulwark-pg-'))).toEqual([]);
  });
});
