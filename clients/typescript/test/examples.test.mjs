// The Node worker example runs against a real herald and exits after N messages;
// scenario 8: the generated types match the committed OpenAPI document.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Herald } from "../dist/index.js";
import { startHerald } from "./support/herald.mjs";

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), "..");

test("examples/worker.mjs consumes N messages and exits", async () => {
  const server = await startHerald();
  try {
    const herald = new Herald({ url: server.url });
    const sub = await herald.subscriptions.create({ topic: "work", mode: "pull" });
    await herald.publishBatch("work", Array.from({ length: 10 }, (_, n) => ({ n })));
    const { stdout } = await run(process.execPath, [join(root, "examples/worker.mjs")], {
      env: { ...process.env, HERALD_URL: server.url, HERALD_SUBSCRIPTION: String(sub.id), HERALD_MAX_MESSAGES: "10" },
      timeout: 30_000,
    });
    const lines = stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.deepEqual(lines.map((l) => l.data.n).sort((a, b) => a - b), [...Array(10).keys()]);
    const view = await herald.subscriptions.get(sub.id);
    assert.equal(view.acked, 10);
  } finally {
    await server.close();
  }
});

test("src/generated.ts matches openapi/openapi.json (npm run check:gen)", async () => {
  const { stdout } = await run(process.execPath, [join(root, "scripts/check-gen.mjs")], { timeout: 60_000 });
  assert.match(stdout, /matches/);
});
