#!/usr/bin/env python3
"""Webhooks end to end, against a real `tessera` process (issue 12).

A local receiver verifies every delivery with the outside Standard Webhooks library
(`standardwebhooks` from PyPI). It stalls the first requests (so deliveries are in flight) and
fails the first attempt of every message (so retries are pending); meanwhile the server is
killed with SIGKILL twice and restarted on the same database. At the end every audit event of
the agency since the webhook's creation must have been delivered and verified, each under one
`webhook-id` (a duplicate only ever repeats the same `webhook-id`), nothing dead, and deliveries
after a secret rotation carry both signatures (each verifiable on its own).

Usage: e2e.py BIN [--database-url URL]   (default: a SQLite database in a temporary data dir)
"""
import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook, WebhookVerificationError

STALL_SECONDS = 6.0  # longer than the attempt timeout below
TIMEOUT_MS = 2000


def log(*a):
    print("[webhooks-e2e]", *a, flush=True)


def fail(msg):
    log("FAIL:", msg)
    sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Receiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.secrets = []  # every whsec_ the API has shown; a delivery must verify with one
        self.attempts = {}  # webhook-id -> attempts seen
        self.delivered = {}  # webhook-id -> event seq (answered 2xx)
        self.seq_ids = {}  # event seq -> set of webhook-ids seen
        self.errors = []
        self.stall_budget = 3
        self.stalling = threading.Event()
        self.dual_signed = 0
        self.requests = 0

    def handle(self, headers, body):
        """Returns the status to answer."""
        with self.lock:
            self.requests += 1
            secrets = list(self.secrets)
        payload, used = None, []
        for s in secrets:
            try:
                payload = Webhook(s).verify(body, headers)
                used.append(s)
            except WebhookVerificationError:
                pass
        msg = headers.get("webhook-id", "")
        if payload is None:
            with self.lock:
                self.errors.append(f"{msg}: no known secret verifies it")
            return 400
        seq = payload["data"]["seq"]
        if payload["type"] != payload["data"]["action"]:
            with self.lock:
                self.errors.append(f"{msg}: type {payload['type']} is not the event's action")
        with self.lock:
            if len(headers.get("webhook-signature", "").split(" ")) == 2 and len(used) == 2:
                self.dual_signed += 1
            n = self.attempts.get(msg, 0) + 1
            self.attempts[msg] = n
            self.seq_ids.setdefault(seq, set()).add(msg)
            stall = self.stall_budget > 0
            if stall:
                self.stall_budget -= 1
        if stall:
            self.stalling.set()
            time.sleep(STALL_SECONDS)
            return 503
        if n == 1:
            return 500  # every message fails its first attempt
        with self.lock:
            self.delivered[msg] = seq
        return 204


def serve_receiver(rx):
    class H(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = rx.handle(headers, body)
            try:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:
                pass  # the server was killed while we stalled

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", free_port()), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class Server:
    def __init__(self, binary, data, port, database_url):
        self.binary, self.data, self.port, self.database_url = binary, data, port, database_url
        self.base = f"http://127.0.0.1:{port}"
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        args = [
            self.binary, "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.data,
            "--webhook-allow-private-targets", "--webhook-retry-unit-ms", "20",
            "--webhook-timeout-ms", str(TIMEOUT_MS), "--rate-limits", "off",
        ]
        if self.database_url:
            args += ["--database-url", self.database_url]
        logf = open(os.path.join(self.data, f"server-{self.starts}.log"), "w")
        self.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)
        for _ in range(300):
            try:
                urllib.request.urlopen(self.base + "/readyz", timeout=1)
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.proc.poll() is not None:
                    fail(f"the server exited: see {logf.name}")
                time.sleep(0.05)
        fail("the server did not become ready")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()

    def call(self, method, path, body=None, key=None):
        req = urllib.request.Request(self.base + path, method=method)
        req.add_header("authorization", f"Bearer {key or self.key}")
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, data, timeout=30) as r:
                text = r.read()
                return json.loads(text) if text else None
        except urllib.error.HTTPError as e:
            fail(f"{method} {path}: {e.code} {e.read()[:500]!r}")


def expected_seqs(srv, agy, first_seq):
    """Every event of the agency's chain from `first_seq` on (the audit API, paged)."""
    seqs, cursor = set(), None
    while True:
        q = "?limit=200" + (f"&cursor={cursor}" if cursor else "")
        page = srv.call("GET", f"/v1/agencies/{agy}/audit{q}")
        seqs.update(e["seq"] for e in page["items"] if e["seq"] >= first_seq)
        cursor = page.get("next_cursor")
        if not cursor:
            return seqs


def main():
    if len(sys.argv) < 2:
        fail(__doc__)
    binary = os.path.realpath(sys.argv[1])
    database_url = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--database-url" else None
    rx = Receiver()
    receiver = serve_receiver(rx)
    hook_url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    with tempfile.TemporaryDirectory(prefix="tessera-webhooks-e2e-") as data:
        srv = Server(binary, data, free_port(), database_url)
        srv.start()
        with open(os.path.join(data, "bootstrap-admin.key")) as f:
            srv.key = f.read().strip()
        agy = srv.call("POST", "/v1/agencies", {"name": "Webhooks e2e"})["id"]
        created = srv.call("POST", f"/v1/agencies/{agy}/webhooks", {"url": hook_url, "events": ["*"]})
        whk, secret = created["id"], created["secret"]
        if not secret.startswith("whsec_") or len(base64.b64decode(secret[6:])) < 24:
            fail(f"not a Standard Webhooks secret: {secret[:8]}…")
        with rx.lock:
            rx.secrets.append(secret)
        audit = srv.call("GET", f"/v1/agencies/{agy}/audit?action=webhook.create")
        first_seq = audit["items"][-1]["seq"]
        log(f"backend {'postgres' if database_url else 'sqlite'}: webhook {whk} from seq {first_seq}")
        for i in range(20):
            srv.call("POST", f"/v1/agencies/{agy}/accounts", {"name": f"account {i}"})
        if not rx.stalling.wait(30):
            fail("no delivery reached the receiver")
        time.sleep(0.3)
        srv.kill9()
        log(f"killed -9 with deliveries in flight ({rx.requests} requests so far)")
        srv.start()
        for i in range(10):
            srv.call("POST", f"/v1/agencies/{agy}/accounts", {"name": f"after restart {i}"})
        rotated = srv.call("POST", f"/v1/agencies/{agy}/webhooks/{whk}/rotate-secret", {"previous_expires_in_seconds": 3600})
        with rx.lock:
            rx.secrets.append(rotated["secret"])
        for i in range(5):
            srv.call("POST", f"/v1/agencies/{agy}/accounts", {"name": f"after rotation {i}"})
        time.sleep(1.0)
        srv.kill9()
        log(f"killed -9 again ({rx.requests} requests so far)")
        srv.start()
        want = expected_seqs(srv, agy, first_seq)
        deadline = time.time() + 120
        while True:
            with rx.lock:
                got = set(rx.delivered.values())
            missing = want - got
            if not missing:
                break
            if time.time() > deadline:
                fail(f"{len(missing)} events never delivered: {sorted(missing)[:20]}")
            time.sleep(0.25)
        with rx.lock:
            errors = list(rx.errors)
            for seq, ids in rx.seq_ids.items():
                if len(ids) != 1:
                    errors.append(f"event {seq} came under {len(ids)} webhook-ids: {ids}")
            retried = sum(1 for n in rx.attempts.values() if n > 1)
            dual = rx.dual_signed
            total = rx.requests
        if errors:
            fail("; ".join(errors[:10]))
        if dual == 0:
            fail("no delivery after the rotation carried both signatures")
        dead = srv.call("GET", f"/v1/agencies/{agy}/webhooks/{whk}/deliveries?state=dead")
        if dead["items"]:
            fail(f"dead letters: {dead['items'][:3]}")
        srv.stop()
        receiver.shutdown()
        log(f"ok: {len(want)} events delivered and verified by standardwebhooks across 2 kill -9, "
            f"{total} requests, {retried} messages retried, {dual} dual-signed after rotation")


if __name__ == "__main__":
    main()
