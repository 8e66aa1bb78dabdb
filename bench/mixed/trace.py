"""Lines up a MIX_TRACE file (bench/mixed/mix.lua) with a CPU sample (bench/mixed/cpu.py):
per half second of the last SECONDS of the trace, the checks slower than the run's p99 and the
CPU of each process group (ticks of 10 ms).
  python3 bench/mixed/trace.py TRACE CPU SECONDS
"""

import sys

GROUPS = ["node", "pg_client", "pg_parallel", "pg_autovac", "pg_bg", "pg_other", "wrk", "redis"]


def main(trace, cpu, secs):
    with open(trace) as f:
        rows = [(float(p[0]), float(p[1])) for p in (line.split() for line in f) if len(p) >= 3 and p[2] == "c"]
    end = rows[-1][0]
    start = end - secs * 1e6
    rows = [r for r in rows if r[0] >= start]
    lat = sorted(r[1] for r in rows)
    p99 = lat[int(len(lat) * 0.99)]
    slow = {}
    for t, latency in rows:
        b = int((t - start) / 5e5)
        slow[b] = slow.get(b, 0) + (latency > p99)
    use = {}
    with open(cpu) as f:
        for line in f:
            t, g, v = line.split()
            if start <= float(t) <= end:
                b = int((float(t) - start) / 5e5)
                use.setdefault(b, {})
                use[b][g] = use[b].get(g, 0) + int(v)
    print(f"checks: {len(rows)}, p99 {p99 / 1000:.2f} ms; per half second: checks above it, then CPU ticks by group")
    print("    s  slow " + " ".join(f"{g:>11}" for g in GROUPS))
    for b in range(int(secs * 2)):
        print(f"{b / 2:5.1f} {slow.get(b, 0):5d} " + " ".join(f"{use.get(b, {}).get(g, 0):11d}" for g in GROUPS))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
