"""Scenarios 3 and 4: PostgreSQL restarted while serving, and Redis stopped.

PostgreSQL: a read/write load runs through the balancer and each node's `/readyz` is sampled
directly, while PostgreSQL is stopped (`pg_ctl stop -m fast`), left down OUTAGE s and started
again. During the outage every node's `/readyz` answers non-200; 5xx answers appear only
between the stop and MARGIN s after PostgreSQL is back; afterwards every node answers
`/readyz` 200 and takes a write directly, without being restarted.

Redis: the declared fail modes (README "Rate limits"): `token` and `signin` fail closed (503
with Retry-After), `check`, `read` and `write` fail open (served, even past an API key's own
quota); `/readyz` stays 200 and says `"redis": "unreachable"`. After Redis restarts (empty:
no persistence) every node says `"redis": "up"` and an API key's quota is enforced again,
cluster-wide (exactly `limit` of the requests spread over three nodes are admitted).
"""

import collections
import secrets
import threading
import time

import revocation
from client import Api, Session, now, request
from harness import Failure, wait_until

OUTAGE = 5.0
MARGIN = 2.0  # s after PostgreSQL is back within which a 5xx is still accepted
LOADERS = 3


class Loader(threading.Thread):
    """Alternates a write (create an account) and a read (the agency) through the balancer."""

    def __init__(self, base, token, agency, stop):
        super().__init__(daemon=True)
        self.session = Session(base, token, timeout=15)
        self.agency, self.stop = agency, stop
        self.records = []  # (sent, answered, outcome)

    def run(self):
        i = 0
        while not self.stop.is_set():
            sent = now()
            try:
                if i % 2:
                    r = self.session.request("GET", f"/v1/agencies/{self.agency}")
                else:
                    r = self.session.request("POST", f"/v1/agencies/{self.agency}/accounts", body={"name": f"pg {secrets.token_hex(4)}"})
                outcome = r.status
            except (OSError, ValueError) as e:
                outcome = type(e).__name__
            self.records.append((sent, now(), outcome))
            i += 1
            if not (isinstance(outcome, int) and outcome < 500):
                time.sleep(0.05)  # an outage: do not spin
        self.session.close()


class Readyz(threading.Thread):
    """Polls one node's /readyz directly: [(sent, answered, status or error name)]."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url, self.samples, self.stopping = url + "/readyz", [], threading.Event()

    def run(self):
        while not self.stopping.is_set():
            sent = now()
            try:
                outcome = request("GET", self.url, timeout=15).status
            except OSError as e:
                outcome = type(e).__name__
            self.samples.append((sent, now(), outcome))
            self.stopping.wait(0.05)

    def stop(self):
        self.stopping.set()
        self.join()
        return self.samples


def postgres_restart(cluster):
    lb = Api(cluster.lb, cluster.admin_key)
    agy = lb.post("/v1/agencies", {"name": "PostgreSQL restart"})["id"]
    ready = [Readyz(cluster.node_url(i)) for i in range(cluster.NODES)]
    for r in ready:
        r.start()
    stop = threading.Event()
    loaders = [Loader(cluster.lb, cluster.admin_key, agy, stop) for _ in range(LOADERS)]
    t0 = now()
    for w in loaders:
        w.start()
    time.sleep(1.5)
    t_stop = now()
    cluster.pg.stop("fast")
    t_stopped = now()
    time.sleep(OUTAGE)
    t_start = now()
    cluster.pg.start()
    t_up = now()
    recovered = {}

    def recover(i):
        api = Api(cluster.node_url(i), cluster.admin_key)

        def serves():
            if request("GET", cluster.node_url(i) + "/readyz", timeout=2).status != 200:
                return False
            api.post(f"/v1/agencies/{agy}/accounts", {"name": f"recovered on node {i + 1}"})
            return True

        wait_until(f"node {i + 1} to serve again after PostgreSQL restarted", serves, 30)
        recovered[i] = now() - t_up

    threads = [threading.Thread(target=recover, args=(i,)) for i in range(cluster.NODES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(recovered) != cluster.NODES:
        raise Failure(f"not every node recovered: {recovered}")
    time.sleep(2.0)
    stop.set()
    for w in loaders:
        w.join(timeout=30)
    print(f"  PostgreSQL stopped in {t_stopped - t_stop:.2f} s, down {t_start - t_stopped:.1f} s, started in {t_up - t_start:.2f} s")
    print("  recovery after PostgreSQL was back (readyz 200 and a direct write): "
          + ", ".join(f"node {i + 1} {1000 * recovered[i]:.0f} ms" for i in sorted(recovered)))
    # /readyz during the outage: never 200 on any node, and answered (not left hanging).
    for i, r in enumerate(ready):
        during = [(a - t, o) for t, a, o in r.stop() if t >= t_stopped and a <= t_start]
        if not during:
            raise Failure(f"node {i + 1}: no /readyz answer during the outage")
        answers = collections.Counter(str(o) for _, o in during)
        slowest = max(d for d, _ in during)
        print(f"  node {i + 1} /readyz during the outage: {dict(answers)}, slowest answer {1000 * slowest:.0f} ms")
        if answers.get("200"):
            raise Failure(f"node {i + 1} answered /readyz 200 while PostgreSQL was down: {dict(answers)}")
    records = [r for w in loaders for r in w.records]
    # A request in flight when the stop began fails with it: its answer bounds the window.
    bad = [(t, a, o) for t, a, o in records if not (isinstance(o, int) and o < 500)]
    outside = [(t, o) for t, a, o in bad if a < t_stop or t > t_up + MARGIN]
    client_errors = [(t, o) for t, _, o in records if isinstance(o, int) and 400 <= o < 500]
    print(f"  load: {len(records)} requests through the balancer, {len(bad)} 5xx or wire errors "
          f"({dict(collections.Counter(str(o) for _, _, o in bad))}), all between the stop and +"
          f"{max((t - t_up for t, _, _ in bad), default=0):.2f} s after the start (allowed: +{MARGIN} s)")
    if client_errors:
        raise Failure(f"4xx answers under the outage: {client_errors[:5]}")
    if outside:
        raise Failure(f"{len(outside)} 5xx/wire errors outside the outage window: "
                      + ", ".join(f"{o} at {t - t_up:+.2f} s from the start" for t, o in outside[:5]))
    after = [o for t, _, o in records if t > t_up + MARGIN]
    if not after:
        raise Failure("no request was made after the recovery margin")
    print(f"  {len(after)} requests after the margin, all 2xx; total {now() - t0:.1f} s")
    return {"pg_outage_s": round(t_start - t_stopped, 1), "pg_recovery_ms": round(1000 * max(recovered.values()))}


def redis_outage(cluster):
    lb = Api(cluster.lb, cluster.admin_key)
    agy = lb.post("/v1/agencies", {"name": "Redis outage"})["id"]
    acc = lb.post(f"/v1/agencies/{agy}/accounts", {"name": "Redis account"})["id"]
    email, password = f"redis-{secrets.token_hex(4)}@cluster.test", secrets.token_urlsafe(18)
    usr = lb.post(f"/v1/agencies/{agy}/users", {"email": email, "name": "Redis User", "password": password})["id"]
    lb.post(f"/v1/agencies/{agy}/bindings", {"principal": usr, "role": "account_admin", "account": acc})
    redirect = "http://127.0.0.1:9/callback"
    app = lb.post(f"/v1/agencies/{agy}/apps", {"name": "redis app", "redirect_uris": [redirect], "scopes": revocation.SCOPES,
                                              "confidential": True, "kind": "private"})
    lb.post(f"/v1/agencies/{agy}/accounts/{acc}/installations", {"app": app["client_id"], "scopes": revocation.SCOPES})
    auth = {"authorization": revocation.basic(app["client_id"], app["client_secret"])}
    quota = {"limit": 5, "period_seconds": 600}

    def limited_key(name):
        return lb.post(f"/v1/agencies/{agy}/api-keys", {"name": name, "scopes": ["contacts.readonly"], "rate_limit": quota})["secret"]

    check = {"permission": "contacts.read", "resource": {"type": "contact", "agency": agy}}

    def burst(secret, n=12):
        """n checks through the balancer with one key: the answers, and the nodes that served."""
        s = Session(cluster.lb, secret)
        answers, nodes = collections.Counter(), collections.Counter()
        for _ in range(n):
            r = s.request("POST", "/v1/check", body=check)
            answers[r.status] += 1
            nodes[r.header("x-served-by")] += 1
        s.close()
        return answers, nodes

    def token():
        return request("POST", cluster.lb + "/oauth/token", form={"grant_type": "client_credentials", "scope": "contacts.readonly"}, headers=auth)

    def sign_in():
        """The sign-in form's POST (the page fetched first, through the balancer)."""
        return revocation.sign_in_post(cluster.lb, app["client_id"], redirect, email, password)

    # With Redis up: the quota holds across the three nodes.
    answers, nodes = burst(limited_key("baseline"))
    if answers != {200: 5, 429: 7}:
        raise Failure(f"with Redis up, a 5-request key got {dict(answers)} over {dict(nodes)} (want 5 x 200, 7 x 429)")
    print(f"  Redis up: a key with quota 5/600 s: {dict(answers)} over {dict(nodes)}")
    during_key = limited_key("during the outage")
    t_stop = now()
    cluster.stop_redis()
    for i in range(cluster.NODES):
        body = request("GET", cluster.node_url(i) + "/readyz").json()
        if body.get("redis") != "unreachable":
            raise Failure(f"node {i + 1} /readyz with Redis stopped: {body}")
    print("  Redis stopped: /readyz on every node: 200, \"redis\": \"unreachable\"")
    # Fail-closed classes: 503 with Retry-After, on every node (through the balancer, 3 tries each).
    for name, call in (("token", token), ("signin", sign_in)):
        for _ in range(cluster.NODES):
            r = call()
            if r.status != 503 or not r.header("retry-after"):
                raise Failure(f"{name} with Redis down answered {r.status} (retry-after {r.header('retry-after')}), want 503 + Retry-After: {r.body[:200]!r}")
        print(f"  Redis down: {name} (fail closed): 503, Retry-After: {r.header('retry-after')}")
    # Fail-open classes: served, and the key's own quota is not enforced.
    answers, nodes = burst(during_key)
    if answers != {200: 12}:
        raise Failure(f"with Redis down, the check class (fail open) answered {dict(answers)}")
    lb.get(f"/v1/agencies/{agy}/accounts")
    lb.post(f"/v1/agencies/{agy}/accounts", {"name": "written while Redis is down"})
    print(f"  Redis down: check (fail open): 12 checks past a 5-request quota: {dict(answers)}; read and write served")
    t_restart = now()
    cluster.start_redis()
    back = {}
    for i in range(cluster.NODES):
        wait_until(f"node {i + 1} to see Redis again", lambda i=i: request("GET", cluster.node_url(i) + "/readyz").json().get("redis") == "up", 15)
        back[i] = now() - t_restart
    print(f"  Redis restarted after {t_restart - t_stop:.1f} s; /readyz says up on every node within {1000 * max(back.values()):.0f} ms")
    answers, nodes = burst(during_key)
    if answers != {200: 5, 429: 7}:
        raise Failure(f"after Redis restarted, the key's quota is not enforced cluster-wide: {dict(answers)} over {dict(nodes)}")
    if token().status != 200:
        raise Failure("after Redis restarted, client credentials still fail")
    r = sign_in()
    # Signed in: a redirect, or the consent page at once.
    if r.status not in (200, 302, 303) or (r.status == 200 and b"decision" not in r.body):
        raise Failure(f"after Redis restarted, sign-in answered {r.status}: {r.body[:300]!r}")
    print(f"  Redis back: the key's quota applies again cluster-wide: {dict(answers)} over {dict(nodes)}; token and sign-in served")
    return {"redis_recovery_ms": round(1000 * max(back.values()))}
