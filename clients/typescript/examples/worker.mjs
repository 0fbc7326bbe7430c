// A Node worker that consumes a pull subscription with herald-client.
//
//   HERALD_URL=http://localhost:8080 HERALD_SUBSCRIPTION=3 node examples/worker.mjs
//
// HERALD_TOKEN is sent as the bearer token when set. With HERALD_MAX_MESSAGES=N the
// worker stops (draining what runs) after N messages and exits 0, which is how the
// tests run it. SIGINT and SIGTERM stop it the same way.
import { Herald } from "herald-client";

const url = process.env.HERALD_URL ?? "http://localhost:8080";
const subscription = Number(process.env.HERALD_SUBSCRIPTION);
const max = process.env.HERALD_MAX_MESSAGES ? Number(process.env.HERALD_MAX_MESSAGES) : Infinity;
if (!Number.isInteger(subscription)) {
  console.error("set HERALD_SUBSCRIPTION to a pull subscription's id");
  process.exit(2);
}

const herald = new Herald({ url, token: process.env.HERALD_TOKEN });
let handled = 0;
const consumer = herald.consume(
  subscription,
  async ({ message, attempt }) => {
    console.log(JSON.stringify({ id: message.id, topic: message.topic, attempt, data: message.data }));
    handled += 1;
    if (handled >= max) void consumer.stop();
  },
  { concurrency: 4, wait: 5_000, onError: (error) => console.error(`worker stopped: ${error.message}`) },
);
for (const signal of ["SIGINT", "SIGTERM"]) process.once(signal, () => void consumer.stop());

try {
  await consumer.done;
  console.error(`handled ${handled} messages`);
} catch {
  process.exitCode = 1;
}
