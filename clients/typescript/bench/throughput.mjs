// Throughput of herald-client against a running herald; prints JSON figures.
//
//   node bench/throughput.mjs --url http://127.0.0.1:8080 [--messages 100000] [--transport sse|ws]
//
// - subscribe_saturation: N messages pre-published with publishBatch, then read from
//   `earliest` with subscribe (msgs/s).
// - subscribe_offered_1000: messages offered at 1,000 msg/s for a few seconds to a live
//   subscription (the delivered rate, msgs/s).
// - consume_drain: N messages drained by consume with maxInFlight 8 (acked msgs/s).
import { parseArgs } from "node:util";
import { Herald } from "herald-client";

const { values } = parseArgs({
  options: {
    url: { type: "string" },
    messages: { type: "string", default: "100000" },
    transport: { type: "string", default: "sse" },
    "offered-seconds": { type: "string", default: "5" },
  },
});
if (!values.url) {
  console.error("usage: node bench/throughput.mjs --url http://HOST:PORT [--messages N] [--transport sse|ws]");
  process.exit(2);
}
const N = Number(values.messages);
const transport = values.transport;
const herald = new Herald({ url: values.url, timeoutMs: 60_000 });
const run = `bench${Date.now().toString(36)}`;

async function prepublish(topic, count) {
  const payload = { text: "x".repeat(100) };
  for (let sent = 0; sent < count; sent += 1000) {
    const size = Math.min(1000, count - sent);
    await herald.publishBatch(topic, Array.from({ length: size }, (_, i) => ({ ...payload, n: sent + i })));
  }
}

async function subscribeSaturation() {
  const topic = `${run}.sat`;
  await prepublish(topic, N);
  const start = performance.now();
  let count = 0;
  for await (const _ of herald.subscribe(topic, { from: "earliest", transport })) {
    if (++count === N) break;
  }
  const seconds = (performance.now() - start) / 1000;
  return { messages: N, seconds: round(seconds), msgs_per_s: Math.round(N / seconds) };
}

async function subscribeOffered(rate, seconds) {
  const topic = `${run}.offered`;
  const total = rate * seconds;
  let connected;
  const ready = new Promise((resolve) => (connected = resolve));
  const sub = herald.subscribe(topic, { transport, onState: (state) => state === "connected" && connected() });
  let received = 0;
  let first;
  let last;
  const reading = (async () => {
    for await (const _ of sub) {
      last = performance.now();
      first ??= last;
      if (++received === total) break;
    }
  })();
  await ready;
  const start = performance.now();
  for (let i = 0; i < total; i += rate / 100) {
    const due = start + (i / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await herald.publishBatch(topic, Array.from({ length: rate / 100 }, (_, j) => ({ n: i + j })));
  }
  await reading;
  const span = (last - first) / 1000;
  return { offered_per_s: rate, messages: total, delivered_per_s: Math.round((total - 1) / span) };
}

async function consumeDrain() {
  const topic = `${run}.queue`;
  const sub = await herald.subscriptions.create({ topic, mode: "pull" });
  await prepublish(topic, N);
  let acked = 0;
  const start = performance.now();
  let consumer;
  const finished = new Promise((resolve) => {
    consumer = herald.consume(sub.id, () => {
      if (++acked === N) resolve();
    }, { concurrency: 8, maxInFlight: 8, wait: 1000 });
  });
  await finished;
  await consumer.stop();
  const seconds = (performance.now() - start) / 1000;
  return { messages: N, max_in_flight: 8, seconds: round(seconds), acked_per_s: Math.round(N / seconds) };
}

const round = (x) => Math.round(x * 100) / 100;

const results = {
  url: values.url,
  transport,
  subscribe_saturation: await subscribeSaturation(),
  subscribe_offered_1000: await subscribeOffered(1000, Number(values["offered-seconds"])),
  consume_drain: await consumeDrain(),
};
console.log(JSON.stringify(results, null, 2));
