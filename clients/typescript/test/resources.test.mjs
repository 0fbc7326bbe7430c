// The resource calls reach the right paths and answer the documented shapes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError } from "../dist/index.js";
import { startHerald, waitFor } from "./support/herald.mjs";

let server;
let herald;

before(async () => {
  server = await startHerald({ args: ["--webhook-poll-ms", "50"] });
  herald = new Herald({ url: server.url });
});
after(() => server.close());

test("topics: configure, get, list, history, presence, delete", async () => {
  await herald.topics.configure("res.t", { description: "a topic", retention: { max_messages: 100 } });
  const sent = await herald.publishBatch("res.t", [{ n: 1 }, { n: 2 }, { n: 3 }]);
  const view = await herald.topics.get("res.t");
  assert.equal(view.config.description, "a topic");
  assert.ok((await herald.topics.list()).topics.some((t) => t.name === "res.t"));
  const page = await herald.topics.history("res.t", { after: sent.messages[0].id, limit: 1 });
  assert.deepEqual(page.messages.map((m) => m.data), [{ n: 2 }]);
  assert.equal((await herald.topics.presence("res.t")).count, 0);
  const expiring = await herald.publish("res.t", "soon gone", { ttl: 60_000, event: "note" });
  const [envelope] = (await herald.topics.history("res.t", { after: expiring.id - 1 })).messages;
  assert.equal(envelope.event, "note");
  assert.ok(envelope.expires, "ttl gives the envelope an expiry");
  await herald.topics.delete("res.t");
  await assert.rejects(herald.topics.get("res.t"), (e) => e instanceof HeraldError && e.status === 404);
});

test("subscriptions: create, list, update, pull, ack, nack, extend, seek, attempts, delete", async () => {
  const sub = await herald.subscriptions.create({ topic: "res.q", mode: "pull", start: "earliest" });
  await herald.publishBatch("res.q", [{ n: 1 }, { n: 2 }]);
  assert.ok((await herald.subscriptions.list()).subscriptions.some((s) => s.id === sub.id));
  assert.equal((await herald.subscriptions.update(sub.id, { ack_deadline: "45s" })).ack_deadline, "45s");
  const pulled = await herald.subscriptions.pull(sub.id, { max_messages: 2, wait: "2s" });
  assert.equal(pulled.messages.length, 2);
  const [first, second] = pulled.messages.map((m) => m.ack_id);
  assert.equal((await herald.subscriptions.extend(sub.id, [first], 60_000)).updated, 1);
  assert.equal((await herald.subscriptions.nack(sub.id, [second], 0)).updated, 1);
  assert.deepEqual(await herald.subscriptions.ack(sub.id, [first]), { acked: 1, unknown: [] });
  const again = await herald.subscriptions.pull(sub.id, { max_messages: 1, wait: "2s" });
  assert.equal(again.messages[0].attempt, 2);
  assert.equal(typeof (await herald.subscriptions.seek(sub.id, "head")).cursor, "number");
  assert.ok(Array.isArray((await herald.subscriptions.attempts(sub.id)).attempts));
  await herald.subscriptions.delete(sub.id);
  await assert.rejects(herald.subscriptions.get(sub.id), (e) => e.status === 404);
});

test("dead letters: list, get, redrive, redriveAll, delete", async () => {
  const sub = await herald.subscriptions.create({ topic: "res.dl", mode: "pull", max_attempts: 1 });
  await herald.publishBatch("res.dl", [{ n: 1 }, { n: 2 }, { n: 3 }]);
  const pulled = await herald.subscriptions.pull(sub.id, { max_messages: 3, wait: "2s" });
  await herald.subscriptions.nack(sub.id, pulled.messages.map((m) => m.ack_id), "0s");
  const page = await waitFor(async () => {
    const p = await herald.deadLetters.list({ subscription: sub.id });
    return p.dead_letters.length === 3 ? p : null;
  }, { what: "3 dead letters" });
  const [a, b] = page.dead_letters;
  assert.equal((await herald.deadLetters.get(a.id)).id, a.id);
  await herald.deadLetters.delete(a.id);
  assert.equal(typeof (await herald.deadLetters.redrive(b.id)).redriven, "number");
  assert.equal(typeof (await herald.deadLetters.redriveAll({ subscription: sub.id })).redriven, "number");
});

test("tokens answer 409 while access control is off; scheduled lists", async () => {
  await assert.rejects(herald.tokens.list(), (e) => e instanceof HeraldError && e.status === 409);
  await assert.rejects(herald.tokens.create({ subject: "x" }), (e) => e.status === 409);
  await herald.publish("res.s", "later", { at: new Date(Date.now() + 3_600_000) });
  const page = await herald.scheduled.list({ topic: "res.s" });
  assert.equal(page.scheduled.length, 1);
});
