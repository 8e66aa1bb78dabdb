"""Scenario 5: webhook delivery with three nodes dispatching at once.

Every node runs the dispatcher (`jobs.rs`: enqueueing is a compare-and-set on the webhook's
cursor with deterministic message ids, and each attempt is claimed under a lease on its
delivery row). A receiver on loopback checks each request's Standard Webhooks signature
(HMAC-SHA256 with the standard library), fails the first attempt of every message (500) so
that retries are claimed again by any node, and accepts the next. Writes are spread over the
three nodes through the balancer. Then: every event after the webhook's creation reached the
receiver under exactly one message id, every message was accepted exactly once, and no
message was attempted more than the one failure plus the one success.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from client import Api, request
from harness import Failure, free_port, wait_until

EVENTS = 30


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.key = None
        self.attempts = {}  # message id -> attempts
        self.accepted = {}  # message id -> times answered 2xx
        self.by_seq = {}  # audit seq -> message ids
        self.errors = []

    def verify(self, headers, body):
        msg, ts, sigs = headers.get("webhook-id", ""), headers.get("webhook-timestamp", ""), headers.get("webhook-signature", "")
        mac = hmac.new(self.key, f"{msg}.{ts}.".encode() + body, hashlib.sha256).digest()
        want = base64.b64encode(mac).decode()
        return any(s.startswith("v1,") and hmac.compare_digest(s[3:], want) for s in sigs.split(" "))

    def handle(self, headers, body):
        with self.lock:
            msg = headers.get("webhook-id", "")
            if not self.verify(headers, body):
                self.errors.append(f"{msg}: the signature does not verify")
                return 400
            seq = json.loads(body)["data"]["seq"]
            self.by_seq.setdefault(seq, set()).add(msg)
            n = self.attempts[msg] = self.attempts.get(msg, 0) + 1
            if n == 1:
                return 500
            self.accepted[msg] = self.accepted.get(msg, 0) + 1
            return 204


def serve(rx):
    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = rx.handle({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _attempts(cluster, i):
    r = request("GET", cluster.node_url(i) + "/metrics", token=cluster.admin_key, timeout=5)
    total = 0
    for line in r.body.decode().splitlines():
        if line.startswith("tessera_webhook_attempts_total{"):
            total += int(float(line.split()[-1]))
    return total


def run(cluster):
    rx = Receiver()
    srv = serve(rx)
    try:
        lb = Api(cluster.lb, cluster.admin_key)
        agy = lb.post("/v1/agencies", {"name": "Webhooks on three nodes"})["id"]
        hook = lb.post(f"/v1/agencies/{agy}/webhooks", {"url": f"http://127.0.0.1:{srv.server_address[1]}/hook", "events": ["*"]})
        rx.key = base64.b64decode(hook["secret"].removeprefix("whsec_"))
        first = max(e["seq"] for e in lb.get(f"/v1/agencies/{agy}/audit?action=webhook.create")["items"])
        t0 = time.monotonic()
        for i in range(EVENTS):
            lb.post(f"/v1/agencies/{agy}/accounts", {"name": f"hooked {i}"})
        last = max(e["seq"] for e in lb.get(f"/v1/agencies/{agy}/audit?action=account.create&limit=200")["items"])
        expected = set(range(first + 1, last + 1))

        def delivered():
            with rx.lock:
                done = {s for s, ids in rx.by_seq.items() if any(rx.accepted.get(m) for m in ids)}
            return expected <= done

        wait_until(f"the {len(expected)} events to be delivered", delivered, 60)
        took = time.monotonic() - t0
        time.sleep(2.0)  # room for a duplicate to show
        with rx.lock:
            if rx.errors:
                raise Failure(f"webhooks: {rx.errors[:3]}")
            dup_ids = {s: ids for s, ids in rx.by_seq.items() if len(ids) > 1}
            twice = {m: n for m, n in rx.accepted.items() if n > 1}
            extra = {m: n for m, n in rx.attempts.items() if n > 2}
            events, messages, attempts = len(rx.by_seq), len(rx.attempts), sum(rx.attempts.values())
        if dup_ids:
            raise Failure(f"an event went out under more than one message id: {dup_ids}")
        if twice:
            raise Failure(f"a message was accepted more than once: {twice}")
        if extra:
            raise Failure(f"a message was attempted again after it was accepted: {extra}")
        # Which nodes made the attempts (each node's own counter): they add up to what arrived.
        per_node = [_attempts(cluster, i) for i in range(cluster.NODES)]
        if sum(per_node) != attempts:
            raise Failure(f"the nodes count {per_node} webhook attempts, the receiver saw {attempts}")
        print(f"  {events} events from three dispatching nodes: {messages} messages, {attempts} attempts "
              f"(each failed once, then accepted once; by node {per_node}), all delivered {took:.1f} s after the first write")
        return {"webhook_events": events}
    finally:
        srv.shutdown()
