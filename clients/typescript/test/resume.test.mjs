// Scenario 1: resume across restarts (SSE and WebSocket, SQLite, and Postgres when
// HERALD_TEST_POSTGRES_URL is set). Scenario 2: resume before the first message.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Herald } from "../dist/index.js";
import { dropPostgres, freshPostgres, retrying, startHerald, waitFor } from "./support/herald.mjs";

const TOTAL = 2000;
const BATCH = 20;

/** Publishes TOTAL messages in idempotent batches, restarting herald after each quarter. */
async function publishWithRestarts(herald, server, topic, beforeRestart) {
  const ids = [];
  for (let batch = 0; ids.length < TOTAL; batch++) {
    const items = Array.from({ length: BATCH }, (_, i) => ({ n: batch * BATCH + i }));
    const answer = await retrying(() => herald.publishBatch(topic, items, { idempotencyKey: `batch-${batch}` }));
    ids.push(...answer.messages.map((m) => m.id));
    if (ids.length % (TOTAL / 4) === 0 && ids.length < TOTAL) {
      await beforeRestart();
      await server.restart();
    }
  }
  return ids;
}

async function resumeAcrossRestarts(transport, databaseUrl) {
  const server = await startHerald({ databaseUrl });
  try {
    const herald = new Herald({ url: server.url, timeoutMs: 5000 });
    const topic = `resume.${transport}`;
    const states = [];
    const sub = herald.subscribe(topic, { transport, onState: (s) => states.push(s) });
    const received = [];
    const reading = (async () => {
      for await (const envelope of sub) {
        received.push(envelope.id);
        if (received.length === TOTAL) break;
      }
    })();
    await waitFor(() => states.includes("connected"), { what: "the first connection" });
    // Each restart drops a live connection: wait until the subscription is connected again.
    const connected = () => waitFor(() => states.at(-1) === "connected", { what: "a connection" });
    const published = await publishWithRestarts(herald, server, topic, connected);
    await waitFor(() => received.length === TOTAL, { timeoutMs: 60_000, what: `${TOTAL} messages` });
    await reading;
    assert.deepEqual(received, published);
    assert.equal(sub.lastEventId, String(published.at(-1)));
    assert.ok(states.filter((s) => s === "connected").length === 4, `reconnected after each restart: ${states}`);
    assert.equal(states.at(-1), "closed");
  } finally {
    await server.close();
    if (databaseUrl) dropPostgres(databaseUrl);
  }
}

test("resume across 3 restarts, 2,000 messages, SSE", () => resumeAcrossRestarts("sse"));
test("resume across 3 restarts, 2,000 messages, WebSocket", () => resumeAcrossRestarts("ws"));

if (process.env.HERALD_TEST_POSTGRES_URL) {
  test("resume across 3 restarts on Postgres, SSE", () => resumeAcrossRestarts("sse", freshPostgres()));
  test("resume across 3 restarts on Postgres, WebSocket", () => resumeAcrossRestarts("ws", freshPostgres()));
}

/** A gate the injected sleep waits on: the test decides when the reconnect happens. */
function gatedSleep() {
  let open;
  const gate = new Promise((resolve) => (open = resolve));
  let waiting = 0;
  return {
    sleep: async () => {
      waiting++;
      await gate;
    },
    open: () => open(),
    waiting: () => waiting,
  };
}

async function resumeBeforeFirst(transport) {
  const server = await startHerald();
  try {
    const gated = gatedSleep();
    const herald = new Herald({ url: server.url, timeoutMs: 5000, backoff: { sleep: gated.sleep } });
    const topic = `early.${transport}`;
    await herald.publish(topic, { before: true }); // history the live subscription must not get
    const states = [];
    const sub = herald.subscribe(topic, { transport, onState: (s) => states.push(s) });
    const first = sub.next();
    await waitFor(() => states.includes("connected"), { what: "the first connection" });
    await server.restart();
    await waitFor(() => gated.waiting() > 0, { what: "the subscription to wait before reconnecting" });
    const meanwhile = await herald.publish(topic, { meanwhile: true });
    gated.open();
    const { value } = await first;
    assert.equal(value.id, meanwhile.id);
    assert.deepEqual(value.data, { meanwhile: true });
    sub.close();
    assert.equal(states.at(-1), "closed");
  } finally {
    await server.close();
  }
}

test("resume before the first message, SSE", () => resumeBeforeFirst("sse"));
test("resume before the first message, WebSocket", () => resumeBeforeFirst("ws"));
