"""Scenario 2: `kill -9` one node under a write load through the balancer.

THREADS client threads create accounts, users and bindings (unique names) in one agency
through haproxy, each recording every request: when it was sent, its answer (or the wire
error), the node haproxy says served it (`x-served-by`), and the id of each acknowledged (2xx)
write. Node 1 is killed mid-load; the load goes on for AFTER_DOWN s after haproxy marks the node
down, then stops. Then, through the balancer:
- every acknowledged write is readable;
- each created object has exactly one `*.create` audit event and each event its object (a
  write is applied whole or not at all), and the agency's audit chain verifies;
- objects that exist without an acknowledgement are at most the requests that failed (a
  request in flight on the killed node may have committed before the node died);
- no request sent after haproxy marked the node down failed.
Failed requests are counted and explained, never retried (a write is not idempotent).
The killed node is restarted and must serve again, directly and through the balancer.
"""

import collections
import secrets
import threading
import time

from client import Api, Session, now, request
from harness import Failure, Monitor, wait_until

THREADS = 6
BEFORE_KILL = 2.0
AFTER_DOWN = 3.0
KILLED = 0  # node 1


class Writer(threading.Thread):
    def __init__(self, base, token, agency, n, stop):
        super().__init__(daemon=True)
        self.session = Session(base, token)
        self.agency, self.n, self.stop = agency, n, stop
        self.records = []  # (sent, done, kind, outcome, served_by, id)

    def _one(self, kind, path, body):
        sent = now()
        try:
            r = self.session.request("POST", f"/v1/agencies/{self.agency}/{path}", body=body)
            outcome, served, ident = r.status, r.header("x-served-by"), None
            if 200 <= r.status < 300:
                ident = r.json()["id"]
            elif r.status < 500:
                outcome = f"{r.status} {r.body[:200]!r}"
        except (OSError, ValueError) as e:
            outcome, served, ident = type(e).__name__, None, None
        self.records.append((sent, now(), kind, outcome, served, ident))
        return ident

    def run(self):
        i = 0
        acc = usr = None
        while not self.stop.is_set():
            tag = f"w{self.n}-{i}-{secrets.token_hex(3)}"
            step = i % 3
            if step == 0:
                acc = self._one("account", "accounts", {"name": f"acct {tag}"})
            elif step == 1:
                usr = self._one("user", "users", {"email": f"{tag}@load.test", "name": f"user {tag}"})
            elif acc and usr:
                self._one("binding", "bindings", {"principal": usr, "role": "account_user", "account": acc})
            i += 1
        self.session.close()


def run(cluster):
    lb = Api(cluster.lb, cluster.admin_key)
    agy = lb.post("/v1/agencies", {"name": "Write load"})["id"]
    states = Monitor(lambda: cluster.lb_states().get(f"n{KILLED + 1}"), interval=0.02)
    states.start()
    stop = threading.Event()
    writers = [Writer(cluster.lb, cluster.admin_key, agy, n, stop) for n in range(THREADS)]
    t_start = now()
    for w in writers:
        w.start()
    time.sleep(BEFORE_KILL)
    t_kill = now()
    cluster.kill_node(KILLED)  # SIGKILL, from the main thread
    t_down = wait_until("haproxy to mark the killed node down",
                        lambda: next((t for t, s in states.samples if t >= t_kill and s == "DOWN"), None), 10)
    time.sleep(AFTER_DOWN)
    stop.set()
    for w in writers:
        w.join(timeout=30)
    t_end = now()
    states.stop()
    records = [r for w in writers for r in w.records]
    ok = [r for r in records if isinstance(r[3], int) and 200 <= r[3] < 300]
    failed = [r for r in records if r not in ok]
    rate = len(records) / (t_end - t_start)
    print(f"  load: {THREADS} threads, {len(records)} writes in {t_end - t_start:.1f} s ({rate:.0f}/s), {len(ok)} acknowledged, {len(failed)} failed")
    print(f"  node 1 killed at +{t_kill - t_start:.2f} s; haproxy marked it down {1000 * (t_down - t_kill):.0f} ms later")
    for sent, done, kind, outcome, served, _ in sorted(failed):
        when = "in flight at the kill" if sent <= t_kill else ("before haproxy marked it down" if sent < t_down else "AFTER it was marked down")
        print(f"    failed: {kind} sent at kill{sent - t_kill:+.3f} s, ended at kill{done - t_kill:+.3f} s, {when}: {outcome} (served by {served or '-'})")
    refused = [r for r in failed if isinstance(r[3], str) and r[3][:1] == "4"]
    if refused:
        raise Failure(f"{len(refused)} write(s) were refused as client errors: {refused[:3]}")
    late = [r for r in failed if r[0] >= t_down]
    if late:
        raise Failure(f"{len(late)} write(s) sent after haproxy marked node 1 down failed")
    served_after = collections.Counter(r[4] for r in ok if r[0] >= t_down)
    if served_after.get(f"n{KILLED + 1}"):
        raise Failure(f"haproxy routed {served_after[f'n{KILLED + 1}']} request(s) to the dead node")
    print(f"  after the node was marked down: {sum(1 for r in records if r[0] >= t_down)} writes, 0 failed, served by {dict(served_after)}")
    check_writes(lb, agy, ok, failed)
    # The killed node comes back and serves, directly and through the balancer.
    t = now()
    cluster.restart_node(KILLED)
    wait_until("haproxy to mark node 1 up again", lambda: cluster.lb_states().get(f"n{KILLED + 1}") == "UP", 20)
    Api(cluster.node_url(KILLED), cluster.admin_key).post(f"/v1/agencies/{agy}/accounts", {"name": "after restart"})
    served = collections.Counter()
    for _ in range(6):
        r = request("GET", f"{cluster.lb}/v1/agencies/{agy}", token=cluster.admin_key)
        if r.status != 200:
            raise Failure(f"after the restart, GET through the balancer: {r}")
        served[r.header("x-served-by")] += 1
    if not served.get(f"n{KILLED + 1}"):
        raise Failure(f"after the restart, haproxy sends nothing to node 1: {dict(served)}")
    print(f"  node 1 restarted and back in the balancer in {now() - t:.1f} s (6 reads served by {dict(served)})")
    return {"writes": len(records), "writes_failed": len(failed), "detect_ms": round(1000 * (t_down - t_kill))}


def check_writes(lb, agy, ok, failed):
    """Every acknowledged write is readable; every object has exactly one create event and every
    event its object; the audit chain verifies."""
    lists = {
        "account": {a["id"] for a in lb.list_all(f"/v1/agencies/{agy}/accounts")},
        "user": {u["id"] for u in lb.list_all(f"/v1/agencies/{agy}/users")},
        "binding": {b["id"] for b in lb.list_all(f"/v1/agencies/{agy}/bindings")},
    }
    for kind, present in lists.items():
        acked = {r[5] for r in ok if r[2] == kind}
        lost = acked - present
        if lost:
            raise Failure(f"{len(lost)} acknowledged {kind} write(s) are lost: {sorted(lost)[:5]}")
        events = [e for e in lb.list_all(f"/v1/agencies/{agy}/audit?action={kind}.create") if e.get("outcome", "success") == "success"]
        targets = collections.Counter(e.get("target") for e in events)
        doubled = [t for t, c in targets.items() if c > 1]
        if doubled or set(targets) != present:
            raise Failure(f"{kind}s and their audit events differ: {len(present)} {kind}s, {len(events)} events, "
                          f"without an event {sorted(present - set(targets))[:3]}, events without a {kind} "
                          f"{sorted(set(targets) - present)[:3]}, doubled {doubled[:3]}")
        unacked = present - acked
        n_failed = sum(1 for r in failed if r[2] == kind)
        if len(unacked) > n_failed:
            raise Failure(f"{len(unacked)} {kind}(s) exist that no request created (only {n_failed} failed)")
        print(f"  {kind}s: {len(acked)} acknowledged, all readable; {len(present)} stored = {len(events)} audit events; "
              f"{len(unacked)} committed without an acknowledgement (of {n_failed} failed)")
    verify = lb.get(f"/v1/agencies/{agy}/audit/verify")
    if verify.get("ok") is not True:
        raise Failure(f"the agency's audit chain does not verify: {verify}")
    print(f"  audit chain verifies: {verify.get('events')} events, {verify.get('checkpoints')} checkpoints")
