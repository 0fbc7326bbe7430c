// Scenario 7: a fake server's bad event is a HeraldError of type
// urn:herald:client:malformed (status 0), and the subscription is closed, not skipped past.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WebSocketServer } from "ws";
import { Herald, HeraldError, MALFORMED } from "../dist/index.js";
import { fakeServer } from "./support/fake.mjs";

const good = (id) => JSON.stringify({ id, topic: "t", seq: id, time: "2026-12-07T00:00:00Z", event: "message", priority: 3, data: { id } });

const STREAMS = {
  "data that is not JSON": `id: 2\nevent: message\ndata: {not json\n\n`,
  "an id that is not the envelope's": `id: 3\nevent: message\ndata: ${good(2)}\n\n`,
  "a message without an id": `event: message\ndata: ${good(2)}\n\n`,
  "data that is not an envelope": `id: 2\nevent: message\ndata: {"id":2,"topic":"t"}\n\n`,
  "empty data": `id: 2\nevent: message\ndata:\n\n`,
  "a gap that is not a gap": `event: gap\ndata: {"after":"x"}\n\n`,
};

async function expectMalformed(transport, url) {
  const herald = new Herald({ url });
  const states = [];
  const sub = herald.subscribe("t", { transport, onState: (s) => states.push(s) });
  const first = await sub.next();
  assert.equal(first.value.id, 1, "the good message before the bad one is yielded");
  const error = await sub.next().then(() => null, (e) => e);
  assert.ok(error instanceof HeraldError, String(error));
  assert.equal(error.type, MALFORMED);
  assert.equal(error.status, 0);
  assert.equal(states.at(-1), "closed");
  assert.deepEqual(await sub.next(), { done: true, value: undefined });
}

for (const [name, bad] of Object.entries(STREAMS)) {
  test(`SSE: ${name} is a malformed HeraldError`, async () => {
    const fake = await fakeServer((_, res) => {
      res.writeHead(200, { "content-type": "text/event-stream", "herald-start-after": "0" });
      res.write(`retry: 2000\n\nid: 1\nevent: message\ndata: ${good(1)}\n\n${bad}`);
    });
    try {
      await expectMalformed("sse", fake.url);
      assert.equal(fake.requests.length, 1, "no reconnect");
    } finally {
      await fake.close();
    }
  });
}

test("SSE: an answer that is not an event stream is malformed", async () => {
  const fake = await fakeServer((_, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end("{}");
  });
  try {
    const sub = new Herald({ url: fake.url }).subscribe("t");
    await assert.rejects(sub.next(), (e) => e instanceof HeraldError && e.type === MALFORMED);
  } finally {
    await fake.close();
  }
});

const FRAMES = {
  "a frame that is not JSON": "{nope",
  "a message that is not an envelope": JSON.stringify({ op: "message", sub: "s", id: 2 }),
  "an unknown op": JSON.stringify({ op: "surprise", sub: "s" }),
};

for (const [name, bad] of Object.entries(FRAMES)) {
  test(`WebSocket: ${name} is a malformed HeraldError`, async () => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
    await new Promise((resolve) => wss.once("listening", resolve));
    let connections = 0;
    wss.on("connection", (socket) => {
      connections++;
      socket.once("message", () => {
        socket.send(JSON.stringify({ op: "subscribed", sub: "s", connection: "c", start_after: 0 }));
        socket.send(JSON.stringify({ op: "message", sub: "s", ...JSON.parse(good(1)) }));
        socket.send(bad);
      });
    });
    try {
      await expectMalformed("ws", `http://127.0.0.1:${wss.address().port}`);
      assert.equal(connections, 1, "no reconnect");
    } finally {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });
}
