// The browser's own WebSocket against /ws, and presence on the built-in
// page ("N watching", join and leave lines), in Debian's Chromium.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, WAIT, freePort, startHerald, stopHerald } from './herald.mjs';

let browser;
let dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'herald-ws-'));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});

after(async () => {
  await browser?.close();
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  return context.newPage();
}

test('the browser WebSocket subscribes, publishes, resumes, and survives a bad frame', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const herald = await startHerald(port, join(dir, 'ws.db'));
  try {
    const page = await newPage();
    await page.goto(base);
    // Runs in the page: the browser's WebSocket, nothing else.
    const got = await page.evaluate(async (url) => {
      const frames = [];
      const ws = new WebSocket(url);
      const next = (op) => new Promise((done) => {
        const look = () => {
          const i = frames.findIndex((f) => f.op === op);
          if (i >= 0) return done(frames.splice(i, 1)[0]);
          setTimeout(look, 10);
        };
        look();
      });
      ws.onmessage = (e) => frames.push(JSON.parse(e.data));
      await new Promise((done) => { ws.onopen = done; });
      ws.send(JSON.stringify({ op: 'subscribe', sub: 'news', topics: ['news'] }));
      await next('subscribed');
      ws.send('not json');
      const error = await next('error');
      ws.send(JSON.stringify({ op: 'publish', ref: 'r1', topic: 'news', data: { headline: 'hello' } }));
      const published = await next('published');
      const message = await next('message');
      // A clean closing handshake: herald answers the browser's Close.
      const closed = new Promise((done) => { ws.onclose = (e) => done({ code: e.code, wasClean: e.wasClean }); });
      ws.close(1000);
      const closing = await closed;
      // A new socket resumes after the last id it saw.
      const again = new WebSocket(url);
      const later = [];
      again.onmessage = (e) => later.push(JSON.parse(e.data));
      await new Promise((done) => { again.onopen = done; });
      again.send(JSON.stringify({ op: 'subscribe', sub: 'n', topics: ['news'], last_event_id: 0 }));
      await new Promise((done) => {
        const look = () => (later.some((f) => f.op === 'message') ? done() : setTimeout(look, 10));
        look();
      });
      again.close();
      return { error, published, message, closing, resumed: later.find((f) => f.op === 'message') };
    }, `ws://127.0.0.1:${port}/ws`);
    assert.equal(got.error.type, 'urn:herald:problem:invalid-frame');
    assert.equal(got.error.status, 400);
    assert.equal(got.published.ref, 'r1');
    assert.equal(got.message.sub, 'news');
    assert.equal(got.message.id, got.published.id);
    assert.deepEqual(got.message.data, { headline: 'hello' });
    assert.equal(got.resumed.id, got.published.id);
    assert.deepEqual(got.closing, { code: 1000, wasClean: true });
  } finally {
    await stopHerald(herald);
  }
});

test('the page shows how many are watching, and who joins and leaves', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const herald = await startHerald(port, join(dir, 'presence.db'));
  try {
    const page = await newPage();
    await page.goto(`${base}/?topic=lobby`);
    await page.waitForSelector('#status[data-state="live"]', WAIT);
    await page.waitForFunction(() => document.querySelector('#watching').textContent === '1', null, WAIT);

    const other = await newPage();
    await other.goto(`${base}/?topic=lobby`);
    await other.waitForSelector('#status[data-state="live"]', WAIT);
    await page.waitForFunction(() => document.querySelector('#watching').textContent === '2', null, WAIT);
    await page.waitForSelector('#messages li.presence[data-presence="join"]', WAIT);

    await other.close();
    await page.waitForSelector('#messages li.presence[data-presence="leave"]', WAIT);
    await page.waitForFunction(() => document.querySelector('#watching').textContent === '1', null, WAIT);
  } finally {
    await stopHerald(herald);
  }
});
