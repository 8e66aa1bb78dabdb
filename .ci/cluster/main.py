"""The cluster test (issue 13): three `tessera serve` nodes on one private PostgreSQL and one
private Redis, behind haproxy. Usage: main.py TESSERA_BIN WORK_DIR. Runs the four scenarios in
order, prints what each measured, and exits 1 on the first failure (with the logs' tails).
Run it through `bash .ci/cluster.sh`, which installs what is missing and cleans up.
"""

import signal
import sys
import time

import feed
import outages
import revocation
import webhooks
import writes
from harness import Cluster, Failure

SCENARIOS = [
    ("1. revocation reaches every node", revocation.run),
    ("1b. LISTEN sessions lost: polling, then listening again", feed.listener_lost),
    ("1c. read your writes on another node (at_least_revision)", feed.read_your_writes),
    ("2. kill -9 a node under a write load", writes.run),
    ("3. PostgreSQL restarted while serving", outages.postgres_restart),
    ("4. Redis stopped: the declared fail modes", outages.redis_outage),
    ("5. webhooks delivered once by three dispatching nodes", webhooks.run),
]


def main(binary, work):
    # SIGTERM (the wrapper's trap) unwinds through `finally`, which stops every process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    cluster = Cluster(work, binary)
    figures = {}
    try:
        cluster.start()
        for name, scenario in SCENARIOS:
            print(f"\n--- {name}", flush=True)
            t = time.monotonic()
            figures.update(scenario(cluster) or {})
            print(f"  ok ({time.monotonic() - t:.1f} s)", flush=True)
    except (Failure, AssertionError) as e:
        print(f"\nFAILED: {e}\n\n{cluster.logs()}", file=sys.stderr)
        return 1
    finally:
        cluster.close()
    print(f"\ncluster test passed in {time.monotonic() - t0:.0f} s: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
