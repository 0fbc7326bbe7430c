// Fake herald servers for the backoff and malformed-stream tests.
import { createServer } from "node:http";

/** An HTTP server whose `handler(req, res, n)` answers request number n; records timestamps. */
export async function fakeServer(handler) {
  const requests = [];
  const server = createServer((req, res) => {
    requests.push({ at: performance.now(), method: req.method, url: req.url, headers: req.headers });
    handler(req, res, requests.length - 1);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    server,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

/** Answers 503 problem+json, with Retry-After when given. */
export function unavailable(res, retryAfter) {
  const headers = { "content-type": "application/problem+json" };
  if (retryAfter !== undefined) headers["retry-after"] = String(retryAfter);
  res.writeHead(503, headers);
  res.end(JSON.stringify({ type: "urn:herald:problem:unavailable", title: "Unavailable", status: 503, detail: "down" }));
}
