#!/usr/bin/env python3
"""Medians of bench/mixed.sh's results (results.tsv) per label, database, nodes, tenant
distribution and write share, as a Markdown table.  python3 bench/mixed/summary.py results.tsv"""
import csv
import statistics
import sys
from collections import defaultdict

COLS = ["rps", "p50_ms", "p99_ms", "max_ms", "check_p50_ms", "check_p99_ms", "error_rate", "rss_peak_mib", "pg_cores",
        "pg_cores_per_1k_rps", "pg_conns_max", "cache_hit_rate", "node_cores", "rps_per_node_core"]
groups = defaultdict(list)
with open(sys.argv[1]) as f:
    for row in csv.DictReader(f, delimiter="\t"):
        groups[(row["label"], row["db"], row["nodes"], row["dist"], row["write_pct"],
                row.get("delay_ms") or "-")].append(row)
print("| run | database | nodes | tenants | writes % | delay ms | n | " + " | ".join(COLS) + " |")
print("|" + "---|" * (7 + len(COLS)))
for key, rows in sorted(groups.items()):
    meds = []
    for c in COLS:
        vals = [float(r[c]) for r in rows if r.get(c) not in (None, "", "nan")]
        meds.append(f"{statistics.median(vals):.4g}" if vals else "-")
    print("| " + " | ".join(key) + f" | {len(rows)} | " + " | ".join(meds) + " |")
