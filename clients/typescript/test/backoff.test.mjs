// Scenario 5: recorded delays stay within [0, min(30 s, 500 ms × 2^n)], Retry-After is
// honoured, and attempts per second are bounded, against a server that answers 503.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError, backoffDelay } from "../dist/index.js";
import { Backoff } from "../dist/backoff.js";
import { fakeServer, unavailable } from "./support/fake.mjs";
import { waitFor } from "./support/herald.mjs";

const ceiling = (n) => Math.min(30_000, 500 * 2 ** n);

test("backoffDelay: full jitter under the ceiling, raised by Retry-After", () => {
  for (let n = 0; n < 12; n++) {
    assert.equal(backoffDelay(n, () => 0), 0);
    assert.ok(backoffDelay(n, () => 0.999999) <= ceiling(n));
    assert.ok(backoffDelay(n, () => 0.999999) > ceiling(n) * 0.99);
    assert.equal(backoffDelay(n, () => 0.5), ceiling(n) / 2);
  }
  assert.equal(backoffDelay(0, () => 0.1, 3), 3000);
  assert.equal(backoffDelay(10, () => 1, 3), 30_000);
});

test("a connection that stayed up for a minute resets the attempts", () => {
  let now = 0;
  const backoff = new Backoff({ random: () => 1, now: () => now, sleep: async () => undefined });
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [500, 1000, 2000]);
  backoff.connected();
  now += 59_000;
  assert.equal(backoff.next(), 4000, "59 s is not healthy");
  backoff.connected();
  now += 60_000;
  assert.equal(backoff.next(), 500, "a healthy minute resets n");
});

/** A Herald whose sleeps are recorded and return at once; `random` is injected. */
function recording(url, random) {
  const delays = [];
  const herald = new Herald({ url, backoff: { random, sleep: async (ms) => void delays.push(ms) } });
  return { herald, delays };
}

test("subscribe against 503: delays within bounds, Retry-After honoured (injected random)", async () => {
  const fake = await fakeServer((_, res, n) => unavailable(res, n >= 8 ? 4 : undefined));
  try {
    const { herald, delays } = recording(fake.url, () => 0.75);
    const states = [];
    const sub = herald.subscribe("t", { onState: (s) => states.push(s) });
    const reading = sub.next();
    await waitFor(() => delays.length >= 12, { what: "12 recorded delays" });
    sub.close();
    assert.deepEqual(await reading, { done: true, value: undefined });
    for (const [n, delay] of delays.entries()) {
      if (n < 8) assert.equal(delay, 0.75 * ceiling(n), `attempt ${n}`);
      else assert.equal(delay, Math.max(4000, 0.75 * ceiling(n)), `attempt ${n} honours Retry-After: 4`);
    }
    assert.ok(fake.requests.length <= delays.length + 1, "one request per attempt");
    assert.equal(fake.requests[0].headers.accept, "text/event-stream");
    assert.ok(states.includes("disconnected"));
    assert.equal(states.at(-1), "closed");
  } finally {
    await fake.close();
  }
});

test("real time: a 503 with Retry-After: 1 is retried at most once a second", async () => {
  const fake = await fakeServer((_, res) => unavailable(res, 1));
  try {
    const herald = new Herald({ url: fake.url, backoff: { random: () => 0 } });
    const sub = herald.subscribe("t");
    const reading = sub.next();
    await waitFor(() => fake.requests.length >= 3, { timeoutMs: 10_000, what: "3 attempts" });
    sub.close();
    await reading;
    const gaps = fake.requests.slice(1).map((r, i) => r.at - fake.requests[i].at);
    for (const gap of gaps) assert.ok(gap >= 990, `attempts at least Retry-After apart: ${gaps}`);
    const seconds = (fake.requests.at(-1).at - fake.requests[0].at) / 1000;
    assert.ok(fake.requests.length - 1 <= seconds + 0.05, "at most one attempt a second");
  } finally {
    await fake.close();
  }
});

test("consume against 503: pulls back off within bounds and never spin", async () => {
  const fake = await fakeServer((req, res) => {
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json" });
      return res.end(JSON.stringify({ id: 1, mode: "pull", ack_deadline: "30s" }));
    }
    unavailable(res, undefined);
  });
  try {
    const { herald, delays } = recording(fake.url, () => 1);
    const consumer = herald.consume(1, () => undefined, { wait: 0 });
    await waitFor(() => delays.length >= 8, { what: "8 recorded delays" });
    await consumer.stop();
    delays.forEach((delay, n) => assert.equal(delay, ceiling(n)));
    const pulls = fake.requests.filter((r) => r.method === "POST");
    assert.ok(pulls.length <= delays.length + 1);
  } finally {
    await fake.close();
  }
});

test("a single call never retries: 503 throws HeraldError with retryAfter", async () => {
  const fake = await fakeServer((_, res) => unavailable(res, 7));
  try {
    const herald = new Herald({ url: fake.url });
    await assert.rejects(herald.publish("t", "x"), (e) => e instanceof HeraldError && e.status === 503 && e.retryAfter === 7);
    assert.equal(fake.requests.length, 1);
  } finally {
    await fake.close();
  }
});
