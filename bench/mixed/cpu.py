"""Samples the CPU of the processes of a mixed-load run every 100 ms, by group (the node, its
PostgreSQL connections, autovacuum, PostgreSQL's writers, its other processes, wrk, Redis), for
comparison with a MIX_TRACE file (bench/mixed/trace.py). Both use CLOCK_MONOTONIC.
  python3 bench/mixed/cpu.py OUT SECONDS
Writes "<monotonic us> <group> <ticks since the previous sample>" lines.
"""

import os
import re
import sys
import time


def group(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    if " serve " in cmd and "tessera" in cmd:
        return "node"
    if cmd.startswith("postgres:"):
        if "autovacuum" in cmd:
            return "pg_autovac"
        if any(w in cmd for w in ("checkpointer", "background writer", "walwriter")):
            return "pg_bg"
        if "parallel worker" in cmd:
            return "pg_parallel"
        # A connection's title: "postgres: <user> <database> <host>(<port>) <state>".
        if re.match(r"postgres: \S+ \S+ \S+\(\d+\)", cmd):
            return "pg_client"
        return "pg_other"
    if cmd.startswith("wrk"):
        return "wrk"
    if "redis" in cmd:
        return "redis"
    return None


def main(out_path, seconds):
    seen = {}  # pid -> (ticks, group)
    end = time.monotonic() + seconds
    with open(out_path, "w") as out:
        while time.monotonic() < end:
            t = time.monotonic()
            acc = {}
            for d in os.listdir("/proc"):
                if not d.isdigit():
                    continue
                try:
                    with open(f"/proc/{d}/stat") as f:
                        s = f.read()
                except OSError:
                    continue
                rest = s[s.rfind(")") + 2:].split()
                ticks = int(rest[11]) + int(rest[12])
                g = seen[d][1] if d in seen else group(d)
                if g is None:
                    continue
                before = seen.get(d, (ticks, g))[0]
                acc[g] = acc.get(g, 0) + ticks - before
                seen[d] = (ticks, g)
            for g, v in sorted(acc.items()):
                out.write(f"{t * 1e6:.0f} {g} {v}\n")
            time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
