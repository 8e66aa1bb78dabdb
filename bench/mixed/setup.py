#!/usr/bin/env python3
"""A small mixed-load dataset created through Tessera's HTTP API, for when `tessera dev seed`
is not at hand (or for the 100-agency runs): per agency an account, two users (one bound
`account_user` on the account, one not), an agency-wide API key, a confidential app
installed on the account. Writes JSON Lines in the shape `tessera dev seed --emit` writes (docs/SEEDING.md),
one agency a line, which bench/mixed/prep.py reads.

    python3 bench/mixed/setup.py --url http://127.0.0.1:8080 --admin-key-file K --agencies 100 --out creds.jsonl
"""
import argparse
import json
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

SCOPE = "contacts.readonly"
# What the mix's API key does: checks about the agency's principals, admin reads (lists) and
# the admin write (renaming an account); the scopes `tessera dev seed` gives its emitted key.
KEY_SCOPES = ["accounts.readonly", "accounts.write", "api_keys.readonly", "apps.readonly",
              "audit.readonly", "roles.readonly", "users.readonly"]


def call(url, admin, path, body):
    req = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": "Bearer " + admin, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"setup.py: POST {path} answered {e.code}: {e.read().decode(errors='replace')}")


def one(url, admin, i):
    agy = call(url, admin, "/v1/agencies", {"name": f"mix {i}"})["id"]
    base = f"/v1/agencies/{agy}"
    acc = call(url, admin, base + "/accounts", {"name": "acc"})["id"]
    yes = call(url, admin, base + "/users", {"email": f"yes{i}@mix.test", "name": "Yes"})["id"]
    no = call(url, admin, base + "/users", {"email": f"no{i}@mix.test", "name": "No"})["id"]
    call(url, admin, base + "/bindings", {"principal": yes, "role": "account_user", "account": acc})
    key = call(url, admin, base + "/api-keys", {"name": "gateway", "scopes": KEY_SCOPES})
    app = call(url, admin, base + "/apps", {
        "name": "mix", "redirect_uris": ["http://127.0.0.1:9/cb"], "scopes": [SCOPE],
        "confidential": True, "kind": "private"})
    ins = call(url, admin, base + f"/accounts/{acc}/installations", {"app": app["client_id"], "scopes": [SCOPE]})["id"]
    res = {"type": "contact", "account": acc}
    return {
        "agency": agy,
        "api_key": key["secret"],
        "account": acc,
        "user": yes,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "installation": ins,
        "checks": [
            {"principal": yes, "permission": "contacts.read", "resource": res, "allowed": True},
            {"principal": no, "permission": "contacts.read", "resource": res, "allowed": False},
        ],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--admin-key-file", required=True)
    ap.add_argument("--agencies", type=int, default=100)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=8)
    a = ap.parse_args()
    admin = open(a.admin_key_file).read().strip()
    with ThreadPoolExecutor(a.workers) as pool, open(a.out, "w") as out:
        for line in pool.map(lambda i: one(a.url, admin, i), range(a.agencies)):
            out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
