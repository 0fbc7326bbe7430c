// Scenario 4: a schema violation is HeraldError 422 with the problem's type; a bad
// token 401, on a call and on a subscription (SSE and WebSocket: no reconnect loop).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Herald, HeraldError } from "../dist/index.js";
import { startHerald } from "./support/herald.mjs";
import { signJwt } from "./support/jwt.mjs";

const SECRET = "an-hs256-secret-of-at-least-32-bytes!";
let server;
let admin;

before(async () => {
  server = await startHerald({ args: ["--auth-jwt-secret", SECRET] });
  const token = signJwt(SECRET, { sub: "admin", exp: Math.floor(Date.now() / 1000) + 3600, herald: { admin: true } });
  admin = new Herald({ url: server.url, token });
});
after(() => server.close());

test("a schema violation is HeraldError 422 with the problem's type and errors", async () => {
  await admin.topics.configure("orders", {
    schema: { type: "object", required: ["total"], properties: { total: { type: "number", minimum: 0 } } },
  });
  const ok = await admin.publish("orders", { total: 5 });
  assert.equal(typeof ok.id, "number");
  const error = await admin.publish("orders", { total: -1 }).then(() => null, (e) => e);
  assert.ok(error instanceof HeraldError);
  assert.equal(error.status, 422);
  assert.equal(error.type, "urn:herald:problem:schema-violation");
  assert.equal(error.errors[0]?.path, "/total");
  assert.ok(error.requestId);
  const batch = await admin.publishBatch("orders", [{ total: 1 }, { total: -2 }]).then(() => null, (e) => e);
  assert.equal(batch?.status, 422);
  assert.equal(batch.errors[0]?.index, 1);
});

test("a bad token is HeraldError 401 on a call", async () => {
  const bad = new Herald({ url: server.url, token: signJwt("another-secret-that-is-32-bytes-long", { sub: "x" }) });
  await assert.rejects(bad.publish("orders", { total: 1 }), (e) => {
    assert.ok(e instanceof HeraldError);
    assert.equal(e.status, 401);
    assert.match(e.type, /^urn:herald:problem:/);
    return true;
  });
  await assert.rejects(bad.topics.list(), (e) => e instanceof HeraldError && e.status === 401);
});

for (const transport of ["sse", "ws"]) {
  test(`a bad token ends a subscription with 401, without reconnecting (${transport})`, async () => {
    const bad = new Herald({ url: server.url, token: "not-a-jwt" });
    const states = [];
    const sub = bad.subscribe("orders", { transport, onState: (s, e) => states.push([s, e?.status]) });
    await assert.rejects(
      (async () => {
        for await (const envelope of sub) assert.fail(`no message: ${envelope.id}`);
      })(),
      (e) => e instanceof HeraldError && e.status === 401,
    );
    assert.deepEqual(states, [["connecting", undefined], ["closed", 401]]);
  });
}

test("a good token subscribes and publishes", async () => {
  const token = signJwt(SECRET, {
    sub: "alice",
    exp: Math.floor(Date.now() / 1000) + 3600,
    herald: { publish: ["orders.**"], subscribe: ["orders.**"] },
  });
  const alice = new Herald({ url: server.url, token });
  for (const transport of ["sse", "ws"]) {
    const sub = alice.subscribe([`orders.${transport}.*`], { transport, from: "earliest" });
    const sent = await alice.publish(`orders.${transport}.eu`, `hello ${transport}`);
    const { value } = await sub.next();
    assert.equal(value.id, sent.id);
    assert.equal(value.data, `hello ${transport}`);
    sub.close();
  }
  await assert.rejects(alice.publish("billing", "no"), (e) => e.status === 403);
});

test("a body that is not problem+json gives type about:blank", async () => {
  const fake = createServer((_, res) => {
    res.writeHead(502, { "content-type": "text/html" });
    res.end("<h1>bad gateway</h1>");
  });
  await new Promise((resolve) => fake.listen(0, "127.0.0.1", resolve));
  try {
    const herald = new Herald({ url: `http://127.0.0.1:${fake.address().port}` });
    await assert.rejects(herald.topics.list(), (e) => e instanceof HeraldError && e.status === 502 && e.type === "about:blank");
  } finally {
    fake.close();
  }
});

test("idempotent publishes say replayed, scheduled ones answer schedule_id", async () => {
  const first = await admin.publish("pay", "charge 42", { idempotencyKey: "charge-42", priority: "high", key: "c" });
  const again = await admin.publish("pay", "charge 42", { idempotencyKey: "charge-42", priority: "high", key: "c" });
  assert.equal(again.replayed, true);
  assert.equal(again.id, first.id);
  assert.equal(first.replayed, undefined);
  const scheduled = await admin.publish("pay", { later: true }, { delay: 60_000 });
  assert.equal(typeof scheduled.schedule_id, "number");
  const view = await admin.scheduled.get(scheduled.schedule_id);
  assert.equal(view.topic, "pay");
  await admin.scheduled.cancel(scheduled.schedule_id);
  await assert.rejects(admin.scheduled.get(scheduled.schedule_id), (e) => e.status === 404);
});
