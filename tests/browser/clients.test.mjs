// The third-party Node clients a new user reaches for first, against the
// real herald binary: npm `ws` (closing handshakes: 1000 answered, 1001
// when herald stops) and npm `eventsource` (every stream, presence
// included, opens with `retry:`, which dispatches no message).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import { WAIT, freePort, startHerald, stopHerald } from './herald.mjs';

let dir;
let herald;
let port;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'herald-clients-'));
  port = await freePort();
  herald = await startHerald(port, join(dir, 'clients.db'));
});

after(async () => {
  if (herald && herald.exitCode === null) await stopHerald(herald);
});

/** Opens a `ws` socket and waits for `subscribed`. */
async function subscribed(url) {
  const ws = new WebSocket(url);
  await once(ws, 'open');
  ws.send(JSON.stringify({ op: 'subscribe', sub: 's', topics: ['t'] }));
  for (;;) {
    const [data] = await once(ws, 'message');
    if (JSON.parse(data.toString()).op === 'subscribed') return ws;
  }
}

test('npm ws: close(1000) is answered, and a stopping herald closes with 1001', { timeout: 60_000 }, async () => {
  const url = `ws://127.0.0.1:${port}/ws`;
  const ws = await subscribed(url);
  const closing = once(ws, 'close');
  ws.close(1000, 'done');
  const [code] = await closing;
  assert.equal(code, 1000, 'not 1006: herald answered the Close frame');

  const held = await subscribed(url);
  const shut = once(held, 'close');
  await stopHerald(herald);
  const [shutCode, reason] = await shut;
  assert.equal(shutCode, 1001);
  assert.match(reason.toString(), /stopping/);
  herald = await startHerald(port, join(dir, 'clients.db'));
});

test('npm eventsource: a presence stream opens with retry and only real events dispatch', { timeout: 60_000 }, async () => {
  const base = `http://127.0.0.1:${port}`;
  const opened = [];
  const events = [];
  try {
    // Joins to tell of: each new stream sees the others'.
    for (let i = 0; i < 5; i += 1) {
      const es = new EventSource(`${base}/topics/room/events?presence=true&client=c${i}`);
      opened.push(es);
      es.onmessage = (e) => events.push(['message', e.data]);
      es.addEventListener('join', (e) => events.push(['join', e.data]));
      await new Promise((done, fail) => {
        es.onopen = done;
        es.onerror = () => fail(new Error('stream refused'));
      });
    }
    const r = await fetch(`${base}/topics/room`, { method: 'POST', body: 'hello' });
    assert.equal(r.status, 201);
    const deadline = Date.now() + WAIT.timeout;
    while (!events.some(([kind]) => kind === 'message')) {
      assert.ok(Date.now() < deadline, 'the message in time');
      await new Promise((done) => setTimeout(done, 20));
    }
    // Every dispatched event has a payload: the `retry:` block is none.
    for (const [kind, data] of events) {
      assert.notEqual(data, '', `an empty ${kind} event`);
      JSON.parse(data);
    }
    assert.ok(events.some(([kind]) => kind === 'join'));
  } finally {
    for (const es of opened) es.close();
  }
});
