#!/usr/bin/env python3
"""Turns the credentials emitted per agency (JSON Lines from `tessera dev seed --emit` or
bench/mixed/setup.py) into the data file (tab-separated lines) that bench/mixed/mix.lua loads in each wrk
thread, and issues the JWTs the introspection share presents (client credentials, against
--url, for the first --tokens agencies in file order, which are the Zipf draw's top ranks).

    python3 bench/mixed/prep.py --in creds.jsonl --out data.tsv --url http://127.0.0.1:8080 [--tokens 2000]

Per line (docs/SEEDING.md "The credentials file"): agency, api_key, account, client_id,
client_secret, installation (the three null when the agency has none: it then borrows the
previous agency's client for the token and introspection shares), checks: [{principal,
permission, resource: {type, account?}, allowed}].
"""
import argparse
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def pick(d, *names, default=None):
    for n in names:
        if n in d and d[n] is not None:
            return d[n]
    if default is not None:
        return default
    sys.exit(f"prep.py: a line lacks {names[0]}: {sorted(d)}")


def field(s):
    s = str(s)
    if any(c in s for c in '"\\\n\t|;'):
        sys.exit(f"prep.py: unexpected character in {s!r}")
    return s


def basic(cid, secret):
    raw = ":".join(urllib.parse.quote_plus(x) for x in (cid, secret))
    return "Basic " + base64.b64encode(raw.encode()).decode()


def issue(url, ag):
    body = urllib.parse.urlencode({"grant_type": "client_credentials",
                                   "installation": ag["client"][1]}).encode()
    req = urllib.request.Request(url + "/oauth/token", data=body, method="POST", headers={
        "Authorization": ag["client"][0], "Content-Type": "application/x-www-form-urlencoded"})
    for attempt in range(5):
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)["access_token"]
        except urllib.error.HTTPError as e:
            if e.code == 429 and attempt < 4:
                continue
            sys.exit(f"prep.py: token for {ag['agency']} answered {e.code}: {e.read().decode(errors='replace')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--url", required=True, help="a node to issue the introspection tokens")
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--limit", type=int, default=0, help="keep only the first N agencies")
    a = ap.parse_args()
    agencies, last_client = [], None
    with open(a.inp) as f:
        for line in f:
            if not line.strip():
                continue
            d = json.loads(line)
            checks = []
            for c in pick(d, "checks"):
                res = pick(c, "resource")
                checks.append((pick(c, "principal"), pick(c, "permission"), pick(res, "type"),
                               res.get("account") or "", "1" if pick(c, "allowed") else "0"))
            if not checks:
                sys.exit("prep.py: an agency without check tuples")
            if d.get("client_id"):
                last_client = (basic(d["client_id"], pick(d, "client_secret")), pick(d, "installation"), d["agency"])
            agencies.append({
                "agency": pick(d, "agency"),
                "key": pick(d, "api_key"),
                "account": pick(d, "account"),
                "client": last_client,
                "checks": checks,
            })
            if a.limit and len(agencies) >= a.limit:
                break
    first = next((ag["client"] for ag in agencies if ag["client"]), None)
    if first is None:
        sys.exit("prep.py: no agency has a client")
    for ag in agencies:
        ag["client"] = ag["client"] or first
    with_own = [i for i, ag in enumerate(agencies) if ag["client"][2] == ag["agency"]]
    # The first agencies with their own client, in file order (the Zipf draw's top ranks).
    chosen = with_own[: a.tokens]
    with ThreadPoolExecutor(8) as pool:
        tokens = list(pool.map(lambda i: issue(a.url, agencies[i]), chosen))
    # Tab-separated lines, not a Lua table: LuaJIT caps a chunk's constants, and 100k agencies
    # parse faster this way in each wrk thread.
    with open(a.out, "w") as out:
        for ag in agencies:
            cs = ";".join("|".join(field(x) for x in c) for c in ag["checks"])
            out.write("\t".join(["A", field(ag["agency"]), field("Bearer " + ag["key"]), field(ag["client"][0]),
                                 field(ag["client"][1]), cs, field(ag["account"])]) + "\n")
        for i, t in zip(chosen, tokens):
            out.write(f"T\t{i + 1}\t{field(t)}\n")
    print(f"prep.py: {len(agencies)} agencies, {len(tokens)} tokens -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
