// Scenario 6: a cursor older than retention raises GapError with its topics, or
// reaches onGap and goes on from resumed_from.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { GapError, Herald } from "../dist/index.js";
import { startHerald, waitFor } from "./support/herald.mjs";

let server;
let herald;
let ids;

before(async () => {
  server = await startHerald({ args: ["--prune-interval", "1s"] });
  herald = new Herald({ url: server.url });
  await herald.topics.configure("g", { retention: { max_messages: 5 } });
  ids = (await herald.publishBatch("g", Array.from({ length: 20 }, (_, n) => ({ n })))).messages.map((m) => m.id);
  await waitFor(async () => (await herald.topics.history("g")).messages[0]?.id === ids[15], {
    timeoutMs: 15_000,
    what: "the pruner to keep only the last 5",
  });
});
after(() => server.close());

for (const transport of ["sse", "ws"]) {
  test(`without onGap a gap raises GapError and closes (${transport})`, async () => {
    const states = [];
    const sub = herald.subscribe("g", { from: ids[1], transport, onState: (s) => states.push(s) });
    const error = await sub.next().then(() => null, (e) => e);
    assert.ok(error instanceof GapError, String(error));
    assert.deepEqual(error.topics, [{ topic: "g", lost_through: ids[14] }]);
    assert.equal(error.after, ids[1]);
    assert.equal(error.resumedFrom, ids[1]);
    assert.equal(states.at(-1), "closed");
    assert.deepEqual(await sub.next(), { done: true, value: undefined });
  });

  test(`with onGap the gap is reported and the stream goes on (${transport})`, async () => {
    const gaps = [];
    const sub = herald.subscribe("g", { from: ids[1], transport, onGap: (gap) => gaps.push(gap) });
    const got = [];
    for await (const envelope of sub) {
      got.push(envelope.id);
      if (got.length === 5) break;
    }
    assert.deepEqual(got, ids.slice(15));
    assert.equal(gaps.length, 1);
    assert.equal(gaps[0].oldest_available, ids[15]);
    assert.deepEqual(gaps[0].topics, [{ topic: "g", lost_through: ids[14] }]);
  });
}

test("from earliest after pruning: no gap, the retained history", async () => {
  const sub = herald.subscribe("g", { from: "earliest" });
  const { value } = await sub.next();
  assert.equal(value.id, ids[15]);
  sub.close();
});

test("herald says an earliest stream starts after 0 even when history is pruned, where 0 is a gap", async () => {
  // Why the client keeps `earliest` as its cursor until the first message instead of
  // taking Herald-Start-After (docs/clients.md's cursor rule) for an `earliest` stream.
  const response = await fetch(`${server.url}/topics/g/events?last_event_id=earliest`);
  assert.equal(response.headers.get("herald-start-after"), "0");
  await response.body.cancel();
  const sub = herald.subscribe("g", { from: 0 });
  await assert.rejects(sub.next(), (e) => e instanceof GapError);
});
