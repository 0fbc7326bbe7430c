// Scenario 3: two consumers; the handler throws on the first attempt of every 10th
// message; every message succeeds exactly once, the thrown ones at attempt 2.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError, Retry } from "../dist/index.js";
import { startHerald, waitFor } from "./support/herald.mjs";

const COUNT = 300;

test("two consumers: each message succeeds once, the thrown ones at attempt 2", async () => {
  const server = await startHerald();
  try {
    const herald = new Herald({ url: server.url });
    const sub = await herald.subscriptions.create({ topic: "jobs", mode: "pull", min_backoff_ms: 50, max_backoff_ms: 100 });
    const published = [];
    for (let i = 0; i < COUNT; i += 100) {
      const items = Array.from({ length: 100 }, (_, j) => ({ n: i + j }));
      published.push(...(await herald.publishBatch("jobs", items)).messages);
    }
    const succeeded = new Map(); // id -> [attempts]
    const thrown = [];
    const handler = (worker) => async ({ message, attempt }) => {
      const n = message.data.n;
      if (n % 10 === 9 && attempt === 1) {
        thrown.push(message.id);
        // Half the throws say when (Retry), half leave it to the subscription's backoff.
        throw n % 20 === 9 ? new Retry(10) : new Error("first attempt fails");
      }
      await new Promise((resolve) => setTimeout(resolve, n % 3));
      succeeded.set(message.id, [...(succeeded.get(message.id) ?? []), { attempt, worker }]);
    };
    const a = herald.consume(sub.id, handler("a"), { concurrency: 2, maxInFlight: 4, wait: 1000 });
    const b = herald.consume(sub.id, handler("b"), { concurrency: 3, wait: "1s" });
    await waitFor(() => succeeded.size === COUNT, { timeoutMs: 30_000, what: `${COUNT} successes` });
    await Promise.all([a.stop(), b.stop()]);
    await Promise.all([a.done, b.done]);
    for (const { id } of published) {
      const runs = succeeded.get(id);
      assert.equal(runs?.length, 1, `message ${id} succeeded once: ${JSON.stringify(runs)}`);
    }
    for (const id of thrown) assert.equal(succeeded.get(id)[0].attempt, 2);
    assert.equal(thrown.length, COUNT / 10);
    const workers = new Set([...succeeded.values()].map((runs) => runs[0].worker));
    assert.deepEqual([...workers].sort(), ["a", "b"]);
    const view = await waitFor(async () => {
      const v = await herald.subscriptions.get(sub.id);
      return v.acked === COUNT && v.in_flight === 0 ? v : null;
    }, { what: "every message acked" });
    assert.equal(view.backlog, 0);
  } finally {
    await server.close();
  }
});

test("a slow handler's lease is extended at half the deadline", async () => {
  const server = await startHerald();
  try {
    const herald = new Herald({ url: server.url });
    const sub = await herald.subscriptions.create({ topic: "slow", mode: "pull", ack_deadline: "1s" });
    await herald.publish("slow", { n: 1 });
    const attempts = [];
    const consumer = herald.consume(sub.id, async ({ attempt }) => {
      attempts.push(attempt);
      await new Promise((resolve) => setTimeout(resolve, 2500)); // 2.5 deadlines
    }, { wait: 500 });
    await waitFor(async () => (await herald.subscriptions.get(sub.id)).acked === 1, { timeoutMs: 10_000, what: "the ack" });
    await consumer.stop();
    assert.deepEqual(attempts, [1], "never redelivered while it ran");
  } finally {
    await server.close();
  }
});

test("stop() resolves once the last acks are answered, with a pull in flight", async () => {
  const server = await startHerald();
  try {
    const herald = new Herald({ url: server.url });
    for (let round = 0; round < 5; round += 1) {
      const sub = await herald.subscriptions.create({ topic: `stop${round}`, mode: "pull" });
      await herald.publishBatch(`stop${round}`, Array.from({ length: 20 }, (_, n) => ({ n })));
      let handled = 0;
      // A long wait: when the last handlers end, a long poll is out, so their acks
      // go on their own request, which stop() must wait for.
      const consumer = herald.consume(sub.id, () => void (handled += 1), { concurrency: 8, maxInFlight: 8, wait: "20s" });
      await waitFor(() => handled === 20, { what: "20 handled" });
      await consumer.stop();
      const view = await herald.subscriptions.get(sub.id);
      assert.equal(view.acked, 20, `round ${round}: every ack answered before stop() resolved`);
      assert.equal(view.in_flight, 0);
    }
  } finally {
    await server.close();
  }
});

test("consume on an unknown subscription ends: done rejects with 404 and onError gets it", async () => {
  const server = await startHerald();
  try {
    const herald = new Herald({ url: server.url });
    const errors = [];
    const consumer = herald.consume(999, () => undefined, { onError: (e) => errors.push(e) });
    await assert.rejects(consumer.done, (e) => e instanceof HeraldError && e.status === 404);
    assert.equal(errors.length, 1);
  } finally {
    await server.close();
  }
});

test("a paused subscription (409) ends the consumer", async () => {
  const server = await startHerald();
  try {
    const herald = new Herald({ url: server.url });
    const sub = await herald.subscriptions.create({ topic: "paused", mode: "pull" });
    await herald.subscriptions.update(sub.id, { paused: true });
    const consumer = herald.consume(sub.id, () => undefined);
    await assert.rejects(consumer.done, (e) => e instanceof HeraldError && e.status === 409);
  } finally {
    await server.close();
  }
});

test("a consumer goes on across a herald restart", async () => {
  const server = await startHerald();
  try {
    const herald = new Herald({ url: server.url, timeoutMs: 5000 });
    const sub = await herald.subscriptions.create({ topic: "restart", mode: "pull" });
    const seen = new Set();
    const consumer = herald.consume(sub.id, ({ message }) => void seen.add(message.data.n), { concurrency: 2, wait: 1000 });
    await herald.publishBatch("restart", [{ n: 0 }, { n: 1 }]);
    await waitFor(() => seen.size === 2, { what: "the first two" });
    await server.restart();
    await herald.publishBatch("restart", [{ n: 2 }, { n: 3 }]);
    await waitFor(() => seen.size === 4, { timeoutMs: 30_000, what: "the two after the restart" });
    await consumer.stop();
    await consumer.done;
  } finally {
    await server.close();
  }
});

test("timeoutMs 0 means no timeout (streams and pulls still work)", async () => {
  const server = await startHerald();
  try {
    const herald = new Herald({ url: server.url, timeoutMs: 0 });
    for (const transport of ["sse", "ws"]) {
      const sub = herald.subscribe(`notimeout.${transport}`, { transport, from: "earliest" });
      const sent = await herald.publish(`notimeout.${transport}`, "x");
      assert.equal((await sub.next()).value.id, sent.id);
      sub.close();
    }
  } finally {
    await server.close();
  }
});
