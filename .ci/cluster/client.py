"""A small HTTP client on the standard library: one-shot requests, and keep-alive sessions
(one per load thread) that reconnect after a failed request and never retry it."""

import http.client
import json
import time
import urllib.parse


class Response:
    def __init__(self, status, raw_headers, body):
        self.status, self.body = status, body
        self.headers = {k.lower(): v for k, v in raw_headers}
        self.set_cookies = [v for k, v in raw_headers if k.lower() == "set-cookie"]

    def json(self):
        return json.loads(self.body or b"null")

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.body[:300]!r}>"


def _encode(body, form, token, headers):
    h = {k.lower(): v for k, v in (headers or {}).items()}
    if token:
        h["authorization"] = f"Bearer {token}"
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        h["content-type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        h["content-type"] = "application/json"
    return data, h


def _split(url):
    u = urllib.parse.urlsplit(url)
    path = u.path or "/"
    if u.query:
        path += "?" + u.query
    return u.hostname, u.port, path


def request(method, url, body=None, form=None, token=None, headers=None, timeout=10):
    """One request on a fresh connection."""
    host, port, path = _split(url)
    data, h = _encode(body, form, token, headers)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        return Response(r.status, r.getheaders(), r.read())
    finally:
        conn.close()


class Session:
    """A keep-alive connection to one base URL. A request that fails on the wire raises and
    drops the connection (the next request opens a new one); it is never retried here."""

    def __init__(self, base, token=None, timeout=10):
        self.host, self.port, _ = _split(base)
        self.token, self.timeout = token, timeout
        self.conn = None

    def request(self, method, path, body=None, form=None, headers=None):
        data, h = _encode(body, form, self.token, headers)
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request(method, path, body=data, headers=h)
            r = self.conn.getresponse()
            resp = Response(r.status, r.getheaders(), r.read())
        except Exception:
            self.close()
            raise
        if resp.header("connection") == "close":
            self.close()
        return resp

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Api:
    """JSON calls that must succeed (fixtures): raises with the answer otherwise."""

    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None, expect=(200, 201, 204), base=None):
        r = request(method, (base or self.base) + path, body=body, token=self.token)
        if r.status not in expect:
            raise AssertionError(f"{method} {path} -> {r.status}: {r.body[:500]!r}")
        return r.json() if r.body else None

    def post(self, path, body, **kw):
        return self.call("POST", path, body, **kw)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)

    def list_all(self, path, limit=200):
        """Every item of a paginated list."""
        items, cursor = [], None
        sep = "&" if "?" in path else "?"
        while True:
            q = f"{path}{sep}limit={limit}" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            page = self.get(q)
            items.extend(page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return items


def now():
    return time.monotonic()
