// subscribe details: presence events never move lastEventId, several topics use
// /events, a WebSocket error frame ends the subscription, break and close() end it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError } from "../dist/index.js";
import { startHerald, waitFor } from "./support/herald.mjs";

let server;
let herald;

before(async () => {
  server = await startHerald();
  herald = new Herald({ url: server.url });
});
after(() => server.close());

for (const transport of ["sse", "ws"]) {
  test(`presence: join events are yielded and never move lastEventId (${transport})`, async () => {
    const topic = `lobby.${transport}`;
    const sub = herald.subscribe(topic, { transport, presence: true, client: "alice" });
    const { value: join } = await sub.next();
    assert.equal(join.kind, "join");
    assert.equal(join.client, "alice");
    assert.equal(join.topic, topic);
    assert.equal(sub.lastEventId, undefined);
    const sent = await herald.publish(topic, { hi: 1 });
    const { value: message } = await sub.next();
    assert.equal(message.id, sent.id);
    assert.equal(sub.lastEventId, String(sent.id));
    sub.close();
  });

  test(`several topics and a filter (${transport})`, async () => {
    const a = await herald.publish(`multi.${transport}.a`, { total: 1 });
    const b = await herald.publish(`other.${transport}`, { total: 200 });
    await herald.publish(`multi.${transport}.c`, { total: 2 });
    const c = await herald.publish(`multi.${transport}.d`, { total: 300 });
    const sub = herald.subscribe([`multi.${transport}.*`, `other.${transport}`], {
      transport,
      from: a.id - 1,
      filter: "data.total > 100",
    });
    const got = [];
    for await (const envelope of sub) {
      got.push(envelope.id);
      if (got.length === 2) break;
    }
    assert.deepEqual(got, [b.id, c.id]);
    assert.deepEqual(await sub.next(), { done: true, value: undefined }, "break closed it");
  });

  test(`a bad filter ends the subscription with 400 (${transport})`, async () => {
    const sub = herald.subscribe("t", { transport, filter: "data.total >" });
    await assert.rejects(sub.next(), (e) => e instanceof HeraldError && e.status === 400);
  });

  test(`close() ends a waiting iterator (${transport})`, async () => {
    const states = [];
    const sub = herald.subscribe(`quiet.${transport}`, { transport, onState: (s) => states.push(s) });
    const pending = sub.next();
    await waitFor(() => states.includes("connected"), { what: "connected" });
    sub.close();
    assert.deepEqual(await pending, { done: true, value: undefined });
    assert.deepEqual(states, ["connecting", "connected", "closed"]);
  });
}
