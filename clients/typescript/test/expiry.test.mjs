// A token that expires ends the stream (SSE) or closes the socket (WebSocket); the
// reconnect gets 401, which ends the subscription: never an endless reconnect loop.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Herald, HeraldError } from "../dist/index.js";
import { startHerald } from "./support/herald.mjs";
import { signJwt } from "./support/jwt.mjs";

const SECRET = "another-hs256-secret-of-32-bytes-or-more";
let server;

before(async () => {
  server = await startHerald({ args: ["--auth-jwt-secret", SECRET] });
});
after(() => server.close());

for (const transport of ["sse", "ws"]) {
  test(`an expiring token ends the subscription with 401 (${transport})`, async () => {
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = signJwt(SECRET, { sub: "bob", exp, herald: { publish: ["**"], subscribe: ["**"] } });
    const herald = new Herald({ url: server.url, token });
    const states = [];
    const sub = herald.subscribe(`expiring.${transport}`, { transport, from: "earliest", onState: (s, e) => states.push([s, e?.status]) });
    const sent = await herald.publish(`expiring.${transport}`, "before expiry");
    const { value } = await sub.next();
    assert.equal(value.id, sent.id);
    await assert.rejects(sub.next(), (e) => e instanceof HeraldError && e.status === 401);
    const connects = states.filter(([s]) => s === "connecting").length;
    assert.ok(connects <= 3, `a bounded number of attempts: ${JSON.stringify(states)}`);
    assert.deepEqual(states.at(-1), ["closed", 401]);
  });
}
