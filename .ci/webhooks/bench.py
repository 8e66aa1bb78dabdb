#!/usr/bin/env python3
"""Webhook delivery rate: deliveries/s from one `tessera` process (pinned to one core with
taskset) to a local receiver (node, another core) that answers 204.

The backlog is made first, with the dispatcher off (`--webhook-dispatch off`): N accounts are
created in an agency whose webhook receives `account.create`. Then the server restarts with
the dispatcher on, pinned to CPU 0, and the receiver times the first to the N-th delivery:
enqueueing from the audit chain, claiming, signing and POSTing (a connection per delivery).

Usage: bench.py BIN N [--database-url URL] [--cpu C]
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(__file__))
from e2e import Server, free_port, log  # noqa: E402


def main():
    binary, n = os.path.realpath(sys.argv[1]), int(sys.argv[2])
    rest = sys.argv[3:]
    database_url = rest[rest.index("--database-url") + 1] if "--database-url" in rest else None
    cpu = rest[rest.index("--cpu") + 1] if "--cpu" in rest else "0"
    rport = free_port()
    rx = subprocess.Popen(["node", os.path.join(os.path.dirname(__file__), "receiver.mjs"), str(rport), str(n)],
                          stdout=subprocess.PIPE, text=True)
    with tempfile.TemporaryDirectory(prefix="tessera-webhooks-bench-") as data:
        srv = Server(binary, data, free_port(), database_url)
        srv.extra = ["--webhook-dispatch", "off"]
        start(srv, [])
        with open(os.path.join(data, "bootstrap-admin.key")) as f:
            srv.key = f.read().strip()
        agy = srv.call("POST", "/v1/agencies", {"name": "Bench"})["id"]
        srv.call("POST", f"/v1/agencies/{agy}/webhooks",
                 {"url": f"http://127.0.0.1:{rport}/hook", "events": ["account.create"]})
        t = time.time()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: srv.call("POST", f"/v1/agencies/{agy}/accounts", {"name": f"a{i}"}), range(n)))
        log(f"backlog of {n} events made in {time.time() - t:.1f} s")
        srv.stop()
        start(srv, ["taskset", "-c", cpu])
        out = rx.stdout.readline()
        srv.stop()
        rx.kill()
        r = json.loads(out)
        log(f"{'postgres' if database_url else 'sqlite'}: {r['requests']} deliveries ({r['distinct']} distinct ids) "
            f"in {r['ms']:.0f} ms: {r['per_second']} deliveries/s (server on CPU {cpu})")
        print(json.dumps(r))


def start(srv, prefix):
    """Starts the server with the bench's flags (dispatch off while the backlog is made)."""
    orig = srv.binary
    args_extra = srv.extra if not prefix else []
    srv.starts += 1
    args = prefix + [orig, "serve", "--listen", f"127.0.0.1:{srv.port}", "--data-dir", srv.data,
                     "--webhook-allow-private-targets", "--rate-limits", "off"] + args_extra
    if srv.database_url:
        args += ["--database-url", srv.database_url]
    logf = open(os.path.join(srv.data, f"server-{srv.starts}.log"), "w")
    srv.proc = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            urllib.request.urlopen(srv.base + "/readyz", timeout=1)
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not become ready")


if __name__ == "__main__":
    main()
