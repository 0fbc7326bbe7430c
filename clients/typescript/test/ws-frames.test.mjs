// WebSocket frames from a fake herald: a retryable error frame reconnects from the
// cursor, a fatal one ends the subscription, a socket closed by the server reconnects.
import { test } from "node:test";
import assert from "node:assert/strict";
import { WebSocketServer } from "ws";
import { Herald, HeraldError } from "../dist/index.js";

const envelope = (id) => ({ id, topic: "t", seq: id, time: "2026-12-07T00:00:00Z", event: "message", priority: 3, data: id });

/** A fake /ws: `script(socket, subscribeFrame, n)` plays connection number n. */
async function fakeWs(script) {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise((resolve) => wss.once("listening", resolve));
  const subscribes = [];
  wss.on("connection", (socket) => {
    socket.once("message", (data) => {
      const frame = JSON.parse(String(data));
      subscribes.push(frame);
      script(socket, frame, subscribes.length - 1);
    });
  });
  return {
    url: `http://127.0.0.1:${wss.address().port}`,
    subscribes,
    close: async () => {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

const send = (socket, frame) => socket.send(JSON.stringify(frame));

test("an error frame with 503 reconnects from the cursor; a close reconnects too", async () => {
  const fake = await fakeWs((socket, frame, n) => {
    send(socket, { op: "subscribed", sub: frame.sub, connection: `c${n}`, start_after: 10 + n });
    if (n === 0) {
      send(socket, { op: "message", sub: frame.sub, ...envelope(11) });
      send(socket, { op: "error", sub: frame.sub, type: "urn:herald:problem:unavailable", title: "Unavailable", status: 503, detail: "" });
    } else if (n === 1) {
      send(socket, { op: "message", sub: frame.sub, ...envelope(12) });
      socket.close(1001, "going away");
    } else {
      send(socket, { op: "message", sub: frame.sub, ...envelope(13) });
    }
  });
  try {
    const herald = new Herald({ url: fake.url, backoff: { sleep: async () => undefined } });
    const sub = herald.subscribe("t", { transport: "ws" });
    const ids = [];
    for await (const message of sub) {
      ids.push(message.id);
      if (ids.length === 3) break;
    }
    assert.deepEqual(ids, [11, 12, 13]);
    assert.deepEqual(fake.subscribes.map((f) => f.last_event_id), [undefined, "11", "12"]);
    assert.deepEqual(fake.subscribes[0].topics, ["t"]);
  } finally {
    await fake.close();
  }
});

test("the cursor before the first message is the subscribed frame's start_after", async () => {
  const fake = await fakeWs((socket, frame, n) => {
    send(socket, { op: "subscribed", sub: frame.sub, connection: "c", start_after: 41 });
    if (n === 0) socket.close(1001);
    else send(socket, { op: "message", sub: frame.sub, ...envelope(42) });
  });
  try {
    const herald = new Herald({ url: fake.url, backoff: { sleep: async () => undefined } });
    const sub = herald.subscribe("t", { transport: "ws" });
    assert.equal((await sub.next()).value.id, 42);
    assert.deepEqual(fake.subscribes.map((f) => f.last_event_id), [undefined, "41"]);
    sub.close();
  } finally {
    await fake.close();
  }
});

test("an error frame with 403 ends the subscription", async () => {
  const fake = await fakeWs((socket, frame) => {
    send(socket, { op: "error", sub: frame.sub, type: "urn:herald:problem:forbidden", title: "Forbidden", status: 403, detail: "no" });
  });
  try {
    const sub = new Herald({ url: fake.url }).subscribe("t", { transport: "ws" });
    await assert.rejects(sub.next(), (e) => e instanceof HeraldError && e.status === 403);
    assert.equal(fake.subscribes.length, 1);
  } finally {
    await fake.close();
  }
});

test("a reader that falls 10,000 frames behind loses the socket and resumes from what it took", { timeout: 30_000 }, async () => {
  const TOTAL = 10_100;
  let firstClosed;
  const closed = new Promise((resolve) => (firstClosed = resolve));
  const fake = await fakeWs((socket, frame, n) => {
    send(socket, { op: "subscribed", sub: frame.sub, connection: `c${n}`, start_after: 0 });
    const from = n === 0 ? 1 : Number(frame.last_event_id) + 1;
    if (n === 0) socket.on("close", () => firstClosed());
    for (let id = from; id <= TOTAL; id += 1) send(socket, { op: "message", sub: frame.sub, ...envelope(id) });
  });
  try {
    const herald = new Herald({ url: fake.url, backoff: { sleep: async () => undefined } });
    const sub = herald.subscribe("t", { transport: "ws" });
    const ids = [(await sub.next()).value.id];
    await closed; // the client dropped the socket it could not keep up with
    for await (const message of sub) {
      ids.push(message.id);
      if (message.id === TOTAL) break;
    }
    assert.deepEqual(ids, Array.from({ length: TOTAL }, (_, i) => i + 1), "every message once, in order");
    assert.equal(fake.subscribes.length, 2);
    const cursor = Number(fake.subscribes[1].last_event_id);
    assert.ok(cursor >= 9_000 && cursor <= 10_001, `resumed from ${cursor}, the last message taken`);
  } finally {
    await fake.close();
  }
});
