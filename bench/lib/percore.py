"""The tables of bench/oauth.sh and bench/http-check.sh: medians per mode, each figure also as a
share of the ceiling measured in the same mode, and the ratios against the peers.

    python3 bench/lib/percore.py RESULTS DURATION CONNECTIONS NAMES RATIOS

RESULTS holds lines `mode server operation req/s p50_ms p99_ms` (bench/lib/percore.sh
`measure`); NAMES is a JSON object server → label; RATIOS a JSON list of
[label, operation, peer server] (Tessera's operation against the peer's, same operation).
"""
import json
import os
import statistics
import sys

path, duration, connections, names, ratios = sys.argv[1:]
names, ratios = json.loads(names), json.loads(ratios)
rows = [line.split() for line in open(path)]
where = {
    "pinned": "pinned: each server on core 0 (taskset -c 0), wrk -t1 on core 1",
    "unpinned": f"unpinned: servers and wrk -t2 share the {os.cpu_count()} cores",
}
for mode in dict.fromkeys(r[0] for r in rows):
    mine = [r[1:] for r in rows if r[0] == mode]
    print(f"### {where[mode]}\n")
    print(f"wrk -c{connections} -d{duration}, {len(mine)} runs, one server at a time\n")
    print("| server | operation | req/s (median) | of the ceiling | p50 ms | p99 ms | req/s per round |")
    print("|---|---|---|---|---|---|---|")
    keys = list(dict.fromkeys((r[0], r[1]) for r in mine))
    col = {k: [[float(r[i]) for r in mine if (r[0], r[1]) == k] for i in (2, 3, 4)] for k in keys}
    med = {k: statistics.median(col[k][0]) for k in keys}
    ceiling = next((v for k, v in med.items() if k[0] == "ceiling"), None)
    for k in keys:
        share = f"{100 * med[k] / ceiling:.1f}%" if ceiling else "-"
        p50, p99 = (statistics.median(col[k][i]) for i in (1, 2))
        print(f"| {names.get(k[0], k[0])} | {k[1]} | {med[k]:.0f} | {share} | {p50:.2f} | {p99:.2f} | "
              f"{', '.join(f'{v:.0f}' for v in col[k][0])} |")
    print()
    for label, op, peer in ratios:
        if ("tessera", op) in med and (peer, op) in med:
            print(f"ratio Tessera/{label}, {op}, {mode} (median req/s): "
                  f"{med[('tessera', op)] / med[(peer, op)]:.2f}x")
    if ceiling:
        for k in keys:
            if k[0] == "tessera":
                print(f"Tessera {k[1]} / ceiling, {mode}: {100 * med[k] / ceiling:.1f}%")
    print()
