// HTTPS with HTTP/2 in a real browser: ten EventSources on one page share
// one HTTP/2 connection, and every one of them gets every message. (Over
// HTTP/1.1 a browser opens at most six connections per origin, so a
// seventh EventSource would wait forever.)
//
// Run: cargo build --bin herald && npm ci && npm test   (in tests/browser)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, WAIT, freePort, startHerald, stopHerald } from './herald.mjs';

const STREAMS = 10;
const MESSAGES = 5;

let browser;
let dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'herald-https-'));
  // A self-signed certificate for 127.0.0.1 (the browser is told to accept it).
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [...CHROMIUM_ARGS, '--ignore-certificate-errors'],
  });
});

after(async () => {
  await browser?.close();
});

test(`${STREAMS} EventSources on one HTTPS page all get every message over HTTP/2`, { timeout: 60_000 }, async () => {
  const port = await freePort();
  const base = `https://127.0.0.1:${port}`;
  const tls = ['--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')];
  const herald = await startHerald(port, join(dir, 'h2.db'), tls);
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    await page.goto(`${base}/`);
    const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
    assert.equal(protocol, 'h2', 'the page came over HTTP/2');

    // Open every stream, and wait until all are open.
    await page.evaluate((n) => {
      window.received = Array.from({ length: n }, () => []);
      window.opened = 0;
      for (let i = 0; i < n; i++) {
        const source = new EventSource(`/topics/h2.s${i}/events`);
        source.onopen = () => { window.opened += 1; };
        source.onmessage = (e) => window.received[i].push(JSON.parse(e.data).data);
      }
    }, STREAMS);
    await page.waitForFunction((n) => window.opened === n, STREAMS, WAIT);

    // Publish to every stream's topic from the page itself, then wait
    // for all of them to have everything.
    await page.evaluate(async ({ n, m }) => {
      for (let j = 0; j < m; j++) {
        for (let i = 0; i < n; i++) {
          const r = await fetch(`/topics/h2.s${i}`, { method: 'POST', body: `m${j}` });
          if (r.status !== 201) throw new Error(`publish answered ${r.status}`);
        }
      }
    }, { n: STREAMS, m: MESSAGES });
    await page.waitForFunction(
      ({ n, m }) => window.received.length === n && window.received.every((r) => r.length >= m),
      { n: STREAMS, m: MESSAGES },
      WAIT,
    );
    const received = await page.evaluate(() => window.received);
    const expected = Array.from({ length: MESSAGES }, (_, j) => `m${j}`);
    for (const r of received) assert.deepEqual(r, expected, 'every message, once, in order');
    await context.close();
  } finally {
    await stopHerald(herald);
  }
});
