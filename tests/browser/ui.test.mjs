// Real-browser tests: Debian's Chromium, driven by playwright-core, against
// the real herald binary. They prove that the built-in page works and that
// the browser's own EventSource resumes exactly across a herald restart.
//
// Run: cargo build --bin herald && npm ci && npm test   (in tests/browser)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS, WAIT, freePort, startHerald, stopHerald } from './herald.mjs';

const ROOT = resolve(import.meta.dirname, '../..');

async function publish(base, topic, body) {
  const r = await fetch(`${base}/topics/${topic}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 201, await r.clone().text());
  return r.json();
}

/** Message ids shown by the page, oldest first (the page shows newest first). */
async function shownIds(page) {
  const ids = await page.$$eval('#messages li.message', (els) => els.map((e) => Number(e.dataset.id)));
  return ids.reverse();
}

async function waitForMessages(page, n) {
  await page.waitForFunction(
    (count) => document.querySelectorAll('#messages li.message').length >= count,
    n,
    WAIT,
  );
}

let browser;
let dir;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'herald-browser-'));
  mkdirSync(join(ROOT, 'target'), { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
  });
});

after(async () => {
  await browser?.close();
});

/** A fresh browser context is a fresh profile (user data) per test. */
async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  return context.newPage();
}

test('the page shows published messages live, in order, and publishes', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const herald = await startHerald(port, join(dir, 'live.db'), ['--webhook-allow-private']);
  try {
    const page = await newPage();
    await page.goto(`${base}/?topic=orders.*`);
    await page.waitForSelector('#status[data-state="live"]', WAIT);

    const acks = [];
    for (const [i, total] of [120, 35, 980, 15, 240].entries()) {
      const region = ['eu', 'us'][i % 2];
      acks.push(await publish(base, `orders.${region}`, { total, customer: { country: region.toUpperCase() } }));
    }
    await waitForMessages(page, 5);
    assert.deepEqual(await shownIds(page), acks.map((a) => a.id));
    const first = await page.$$eval('#messages li.message', (els) => ({ ...els[els.length - 1].dataset }));
    assert.equal(first.topic, 'orders.eu');
    assert.equal(first.seq, '1');

    // The page's own publish form.
    await page.fill('#pub-topic', 'orders.eu');
    await page.fill('#pub-body', '{"total": 77, "note": "from the page"}');
    await page.click('#publish');
    await page.waitForFunction(() => /Published id \d+/.test(document.querySelector('#pub-result').textContent), null, WAIT);
    await waitForMessages(page, 6);

    // The form's priority and delay: scheduled, then appended and shown.
    await page.fill('#pub-body', '{"total": 78, "note": "scheduled from the page"}');
    await page.selectOption('#pub-priority', 'high');
    await page.fill('#pub-delay', '1s');
    await page.click('#publish');
    await page.waitForFunction(() => /Scheduled \d+ for /.test(document.querySelector('#pub-result').textContent), null, WAIT);
    await waitForMessages(page, 7);
    const history = await (await fetch(`${base}/topics/orders.eu/messages`)).json();
    const last = history.messages[history.messages.length - 1];
    assert.equal(last.data.total, 78);
    assert.equal(last.priority, 4);

    // The subscriptions card lists a pull subscription with its backlog.
    const created = await fetch(`${base}/subscriptions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'orders.*', mode: 'pull', start: 'earliest' }),
    });
    assert.equal(created.status, 201);
    const sub = (await created.json()).id;
    await page.waitForFunction((id) => {
      const b = document.querySelector(`[data-subscription="${id}"] .backlog`);
      return b && /backlog [1-9]/.test(b.textContent);
    }, sub, WAIT);

    // A webhook to a closed port: its circuit and latest attempts show.
    const hook = await fetch(`${base}/subscriptions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ topic: 'orders.*', url: 'http://127.0.0.1:9/hook', start: 'earliest', min_backoff_ms: 100 }),
    });
    assert.equal(hook.status, 201);
    const hookId = (await hook.json()).id;
    await page.waitForFunction((id) => {
      const li = document.querySelector(`[data-subscription="${id}"]`);
      return li && /circuit (closed|open|half open)/.test(li.textContent) && li.querySelector('.attempt')
        && /connect|refused/i.test(li.querySelector('.attempt').textContent);
    }, hookId, WAIT);

    // Priority and key show on each message; the token field looks like
    // the others; a pattern's watchers are said not to be counted; the
    // page has an icon.
    const keyed = await fetch(`${base}/topics/orders.eu?priority=high&key=cust-7`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"total": 5}',
    });
    assert.equal(keyed.status, 201);
    const keyedId = (await keyed.json()).id;
    await page.waitForFunction((id) => {
      const li = document.querySelector(`#messages li.message[data-id="${id}"]`);
      return li && li.querySelector('.key')?.textContent === 'key cust-7'
        && li.querySelector('.priority[data-priority="4"]');
    }, keyedId, WAIT);
    const looks = await page.evaluate(() => [document.querySelector('#token'), document.querySelector('#topics')]
      .map((e) => { const c = getComputedStyle(e); return [c.borderRadius, c.borderTopWidth, c.paddingLeft]; }));
    assert.deepEqual(looks[0], looks[1]);
    await page.waitForFunction(() => /watchers of a pattern are not counted/.test(document.querySelector('#watching-note').textContent), null, WAIT);
    const icon = await fetch(`${base}/favicon.svg`);
    assert.equal(icon.status, 200);
    assert.equal(icon.headers.get('content-type'), 'image/svg+xml');
    assert.equal((await fetch(`${base}/favicon.ico`)).status, 200);

    await page.screenshot({ path: join(ROOT, 'target/ui.png'), fullPage: true });
  } finally {
    await stopHerald(herald);
  }
});

test('after herald restarts, EventSource resumes with exactly the missed messages', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const db = join(dir, 'restart.db');
  // The browser waits `retry:` (3 s) before it reconnects: time to restart
  // herald and publish while the page is disconnected.
  const flags = ['--sse-retry-ms', '3000'];
  let herald = await startHerald(port, db, flags);
  const page = await newPage();
  try {
    await page.goto(`${base}/?topic=orders`);
    await page.waitForSelector('#status[data-state="live"]', WAIT);
    const before = [];
    for (let i = 0; i < 3; i++) before.push(await publish(base, 'orders', { n: i }));
    await waitForMessages(page, 3);

    await stopHerald(herald);
    await page.waitForSelector('#status[data-state="reconnecting"]', WAIT);
    herald = await startHerald(port, db, flags);
    const missed = [];
    for (let i = 3; i < 6; i++) missed.push(await publish(base, 'orders', { n: i }));
    assert.equal(
      await page.$eval('#status', (e) => e.dataset.state),
      'reconnecting',
      'the messages must be published while the page is disconnected',
    );

    await page.waitForSelector('#status[data-state="live"]', WAIT);
    await waitForMessages(page, 6);
    const ids = await shownIds(page);
    assert.deepEqual(ids, [...before, ...missed].map((a) => a.id), 'none lost, none twice, in order');
    // Nothing more arrives: one more live message lands right after them.
    const last = await publish(base, 'orders', { n: 6 });
    await waitForMessages(page, 7);
    assert.deepEqual((await shownIds(page)).slice(6), [last.id]);
  } finally {
    await stopHerald(herald);
  }
});

test('a filtered subscription receives only matching messages', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const herald = await startHerald(port, join(dir, 'filter.db'));
  try {
    const page = await newPage();
    const filter = encodeURIComponent('data.total > 100');
    await page.goto(`${base}/?topic=orders&filter=${filter}`);
    await page.waitForSelector('#status[data-state="live"]', WAIT);
    assert.equal(await page.inputValue('#filter'), 'data.total > 100');

    const acks = [];
    for (const total of [50, 150, 99, 200, 100, 1000]) acks.push({ total, ...(await publish(base, 'orders', { total })) });
    await waitForMessages(page, 3);
    const expected = acks.filter((a) => a.total > 100).map((a) => a.id);
    // The last published message matches, so once three are shown every
    // earlier one has been decided.
    assert.deepEqual(await shownIds(page), expected);
    await page.screenshot({ path: join(ROOT, 'target/ui-filtered.png'), fullPage: true });
  } finally {
    await stopHerald(herald);
  }
});

/** An HS256 JWT, as any backend would mint one. */
function jwt(secret, claims) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  const sig = createHmac('sha256', secret).update(body).digest('base64url');
  return `${body}.${sig}`;
}

test('a scoped EventSource with ?access_token= gets its private topic and is refused another user\'s', { timeout: 60_000 }, async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const secret = 'browser-test-secret-of-at-least-32-bytes';
  const herald = await startHerald(port, join(dir, 'auth.db'), ['--auth-jwt-secret', secret]);
  const exp = Math.floor(Date.now() / 1000) + 600;
  const scopes = { subscribe: ['users.{sub}.**'], publish: ['users.{sub}.**'] };
  const alice = jwt(secret, { sub: 'alice', exp, herald: scopes });
  try {
    const page = await newPage();
    await page.goto(`${base}/`);
    // The browser's own EventSource, which cannot send headers.
    const outcome = await page.evaluate(async ({ token }) => {
      const open = (topic) => new Promise((done) => {
        const es = new EventSource(`/topics/${topic}/events?access_token=${encodeURIComponent(token)}`);
        es.onopen = () => done({ es, opened: true });
        es.onerror = () => { if (es.readyState === EventSource.CLOSED) done({ es, opened: false }); };
      });
      const own = await open('users.alice.inbox');
      const other = await open('users.bob.inbox');
      const got = new Promise((done) => { own.es.onmessage = (e) => done(JSON.parse(e.data)); });
      const r = await fetch('/topics/users.alice.inbox', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
        body: JSON.stringify({ text: 'for alice only' }),
      });
      const message = await got;
      own.es.close();
      return { own: own.opened, other: other.opened, status: r.status, data: message.data };
    }, { token: alice });
    assert.deepEqual(outcome, { own: true, other: false, status: 201, data: { text: 'for alice only' } });

    // The page's token field: its stream and its publishes carry the token.
    await page.goto(`${base}/`);
    await page.fill('#token', alice);
    await page.fill('#topics', 'users.alice.*');
    await page.click('#connect');
    await page.waitForSelector('#status[data-state="live"]', WAIT);
    await page.fill('#pub-topic', 'users.alice.inbox');
    await page.fill('#pub-body', '{"from": "the page"}');
    await page.click('#publish');
    await page.waitForFunction(() => /Published id \d+/.test(document.querySelector('#pub-result').textContent), null, WAIT);
    await waitForMessages(page, 1);
    // Another user's topics are refused, and the page says so.
    await page.fill('#topics', 'users.bob.*');
    await page.click('#connect');
    await page.click('#connect');
    await page.waitForFunction(() => /token/.test(document.querySelector('#sub-error').textContent), null, WAIT);
    await page.fill('#pub-topic', 'users.bob.inbox');
    await page.click('#publish');
    await page.waitForFunction(() => /Forbidden/.test(document.querySelector('#pub-result').textContent), null, WAIT);
  } finally {
    await stopHerald(herald);
  }
});
