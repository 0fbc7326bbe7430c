"""Secret rotation against the Standard Webhooks reference library.

Run by .ci/run against a live herald (started with --webhook-allow-private):
a delivery made during the overlap verifies with the previous secret and
with the new one, and fails with any other; the one before the rotation
verifies with the old secret only.

    python rotation.py http://127.0.0.1:PORT
"""

import http.server
import json
import queue
import sys
import threading
import urllib.request

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HERALD = sys.argv[1].rstrip("/")
received: "queue.Queue[tuple[dict, bytes]]" = queue.Queue()


class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received.put((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(HERALD + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def delivery(n):
    call("POST", "/topics/rotation", {"n": n})
    headers, body = received.get(timeout=20)
    assert json.loads(body)["data"] == {"n": n}, body
    return headers, body


def verifies(secret, headers, body):
    try:
        Webhook(secret).verify(body, headers)
        return True
    except WebhookVerificationError:
        return False


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    sub = call("POST", "/subscriptions", {"topic": "rotation", "url": url})
    old = sub["secret"]
    wrong = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    headers, body = delivery(1)
    assert verifies(old, headers, body), "before rotation: the secret"
    assert not verifies(wrong, headers, body), "before rotation: a wrong secret"

    rotated = call("POST", f"/subscriptions/{sub['id']}/rotate-secret")
    new = rotated["secret"]
    assert new != old and rotated["previous_valid_until"]
    headers, body = delivery(2)
    assert len(headers["webhook-signature"].split(" ")) == 2, headers
    assert verifies(new, headers, body), "during the overlap: the new secret"
    assert verifies(old, headers, body), "during the overlap: the old secret"
    assert not verifies(wrong, headers, body), "during the overlap: a wrong secret"
    print("standardwebhooks verified both secrets during the overlap, and refused a wrong one")


if __name__ == "__main__":
    main()
