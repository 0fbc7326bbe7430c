// What the browser tests share: the herald binary, started and stopped,
// and Debian's Chromium.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
export const HERALD = process.env.HERALD_BIN ?? join(ROOT, 'target/debug/herald');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
export const WAIT = { timeout: 20_000 };

/** A port that is free now (herald must come back on the same one). */
export function freePort() {
  return new Promise((done) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Starts herald and resolves once it listens. */
export function startHerald(port, db, flags = []) {
  const child = spawn(
    HERALD,
    ['serve', '--listen', `127.0.0.1:${port}`, '--database-url', `sqlite://${db}`, ...flags],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((done, fail) => {
    let log = '';
    const timer = setTimeout(() => fail(new Error(`herald did not start:\n${log}`)), 20_000);
    child.stderr.on('data', (chunk) => {
      log += chunk;
      if (log.includes('herald listening on')) {
        clearTimeout(timer);
        done(child);
      }
    });
    child.once('exit', (code) => fail(new Error(`herald exited with ${code}:\n${log}`)));
  });
}

/** SIGTERM, and herald must exit cleanly. */
export async function stopHerald(child) {
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, 'herald exits 0 on SIGTERM');
}

