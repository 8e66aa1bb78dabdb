"""The processes of the cluster test, all private to one run: a PostgreSQL cluster (initdb +
pg_ctl on a free port, so it may be restarted), a redis-server, three `tessera serve` nodes
sharing both (one master key, one issuer) and haproxy in front of them, on free loopback
ports in one work directory. Every process but PostgreSQL dies with this one
(PR_SET_PDEATHSIG); PostgreSQL is stopped by `close()` and, failing that, by the trap of
`.ci/cluster.sh`.
"""

import ctypes
import glob
import os
import pwd
import secrets
import signal
import socket
import subprocess
import threading
import time

import client

PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when the thread that started it exits."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Failure(Exception):
    """A failed expectation of the cluster test."""


def wait_until(what, predicate, timeout, interval=0.05):
    """Polls `predicate` until it is truthy; returns its value, or raises after `timeout` s."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except Exception as e:  # noqa: BLE001 - the last error is reported on time-out
            value, last = None, e
        if value:
            return value
        time.sleep(interval)
    raise Failure(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last})" if last else ""))


class Postgres:
    """A private PostgreSQL cluster. As root, its commands run as the `postgres` OS user
    (initdb refuses root)."""

    def __init__(self, work):
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise Failure("no initdb under /usr/lib/postgresql/*/bin (install the postgresql package)")
        self.bin = os.path.dirname(found[-1])
        self.dir = os.path.join(work, "pg")
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "postgres.log")
        self.port = free_port()
        os.makedirs(self.dir)
        self.as_user = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            os.chmod(work, 0o755)
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args, check=True):
        cmd = self.as_user + [os.path.join(self.bin, args[0]), *args[1:]]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if check and out.returncode != 0:
            raise Failure(f"{' '.join(args[:2])} failed ({out.returncode}): {out.stderr.strip()[-2000:]}")
        return out

    def init(self):
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()

    def start(self):
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=150"
        self._run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30", "-o", opts, "start")

    def stop(self, mode="fast"):
        self._run("pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def close(self):
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)

    def url(self, role, db="postgres"):
        return f"postgres://{role}@127.0.0.1:{self.port}/{db}"

    def sql(self, statement, db="postgres"):
        out = subprocess.run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", self.url("postgres", db), "-c", statement],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise Failure(f"psql failed: {out.stderr.strip()}")
        return out.stdout.strip()


class Proc:
    """A child process with its output appended to a log file."""

    def __init__(self, name, argv, log):
        self.name, self.argv, self.log = name, argv, log
        self.popen = None

    def start(self):
        with open(self.log, "ab") as out:
            out.write(f"\n=== start {time.strftime('%H:%M:%S')}: {self.name}\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent
            )
        return self

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()

    def tail(self, n=40):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Cluster:
    """PostgreSQL, Redis, three nodes and haproxy."""

    NODES = 3

    def __init__(self, work, binary):
        self.work, self.bin = work, binary
        self.pg = Postgres(work)
        self.redis_port = free_port()
        self.lb_port = free_port()
        self.node_ports = [free_port() for _ in range(self.NODES)]
        self.lb = f"http://127.0.0.1:{self.lb_port}"
        self.issuer = self.lb
        self.master_key = os.path.join(work, "master.key")
        self.redis = None
        self.haproxy = None
        self.nodes = []
        self.admin_key = None

    # --- set-up ---------------------------------------------------------------------------

    def start(self):
        t0 = time.monotonic()
        self.pg.init()
        # The owner migrates; the nodes run as a role that owns nothing (the server refuses a
        # superuser or BYPASSRLS role).
        self.pg.sql("CREATE ROLE tessera_owner LOGIN NOSUPERUSER NOBYPASSRLS")
        self.pg.sql("CREATE ROLE tessera_app LOGIN NOSUPERUSER NOBYPASSRLS")
        self.pg.sql("CREATE DATABASE tessera OWNER tessera_owner")
        out = subprocess.run(
            [self.bin, "migrate", "--database-url", self.pg.url("tessera_owner", "tessera"), "--grant-to", "tessera_app"],
            capture_output=True,
            text=True,
            cwd=self.work,
        )
        if out.returncode != 0:
            raise Failure(f"tessera migrate failed: {out.stdout}{out.stderr}")
        with open(os.open(self.master_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(secrets.token_hex(32) + "\n")
        self.start_redis()
        self.nodes = [self._node(i) for i in range(self.NODES)]
        # All three at once: they race to bootstrap the empty database.
        for n in self.nodes:
            n.start()
        for i in range(self.NODES):
            self.wait_node_ready(i, timeout=60)
        keys = [p for p in (os.path.join(self.work, f"node{i + 1}", "bootstrap-admin.key") for i in range(self.NODES)) if os.path.exists(p)]
        if len(keys) != 1:
            raise Failure(f"three nodes started at once left {len(keys)} bootstrap key files (want exactly 1): {keys}")
        with open(keys[0]) as f:
            self.admin_key = f.read().strip()
        self.start_haproxy()
        wait_until("haproxy to mark every node up", lambda: all(s == "UP" for s in self.lb_states().values()), 20)
        print(f"set-up: PostgreSQL {os.path.basename(os.path.dirname(self.pg.bin))} :{self.pg.port}, redis :{self.redis_port}, "
              f"nodes {self.node_ports}, haproxy :{self.lb_port}; bootstrap key from {os.path.relpath(keys[0], self.work)} "
              f"(1 of 3 racing nodes); {time.monotonic() - t0:.1f} s")

    def _node(self, i):
        data = os.path.join(self.work, f"node{i + 1}")
        argv = [
            self.bin, "serve",
            "--listen", f"127.0.0.1:{self.node_ports[i]}",
            "--data-dir", data,
            "--database-url", self.pg.url("tessera_app", "tessera"),
            "--issuer", self.issuer,
            "--master-key-file", self.master_key,
            "--redis-url", f"redis://127.0.0.1:{self.redis_port}/0",
            "--password-workers", "1",
            # Scenario 5's receiver is on loopback; retries come quickly.
            "--webhook-allow-private-targets", "--webhook-retry-unit-ms", "20",
        ]
        return Proc(f"node{i + 1}", argv, os.path.join(self.work, f"node{i + 1}.log"))

    def node_url(self, i):
        return f"http://127.0.0.1:{self.node_ports[i]}"

    def wait_node_ready(self, i, timeout=30):
        node = self.nodes[i]

        def ready():
            if not node.alive():
                raise Failure(f"{node.name} exited:\n{node.tail()}")
            return client.request("GET", self.node_url(i) + "/readyz", timeout=2).status == 200

        try:
            return wait_until(f"{node.name} /readyz", ready, timeout)
        except Failure as e:
            raise Failure(f"{e}\n--- {node.name} log:\n{node.tail()}") from None

    def start_redis(self):
        self.redis = Proc(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            os.path.join(self.work, "redis.log"),
        ).start()

        def up():
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")

        wait_until("redis to answer PING", up, 10)

    def start_haproxy(self):
        d = os.path.join(self.work, "haproxy")
        os.makedirs(d, exist_ok=True)
        servers = "\n".join(f"    server n{i + 1} 127.0.0.1:{p} check" for i, p in enumerate(self.node_ports))
        conf = f"""global
    maxconn 2000
    stats socket {d}/stats.sock mode 600 level admin
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 500ms
    timeout client 30s
    timeout server 30s
    timeout queue 5s
    timeout check 3s
    # A connection that failed before the request was sent goes to another node; a request
    # that reached a node is never replayed (a write is not idempotent).
    retries 3
    option redispatch 1
    retry-on conn-failure

frontend edge
    bind 127.0.0.1:{self.lb_port}
    default_backend nodes

backend nodes
    balance roundrobin
    option httpchk
    http-check send meth GET uri /readyz
    http-check expect status 200
    default-server inter 200ms fastinter 100ms downinter 300ms fall 2 rise 2 on-marked-down shutdown-sessions
    http-response set-header x-served-by %s
{servers}
"""
        path = os.path.join(d, "haproxy.cfg")
        with open(path, "w") as f:
            f.write(conf)
        check = subprocess.run(["haproxy", "-c", "-f", path], capture_output=True, text=True)
        if check.returncode != 0:
            raise Failure(f"haproxy -c: {check.stdout}{check.stderr}")
        self.haproxy_sock = os.path.join(d, "stats.sock")
        self.haproxy = Proc("haproxy", ["haproxy", "-db", "-f", path], os.path.join(self.work, "haproxy.log")).start()
        wait_until("haproxy's stats socket", lambda: os.path.exists(self.haproxy_sock), 10)

    def lb_states(self):
        """Each server's state as haproxy sees it: {'n1': 'UP', …}."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(self.haproxy_sock)
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        header = lines[0].lstrip("# ").split(",")
        states = {}
        for line in lines[1:]:
            row = dict(zip(header, line.split(",")))
            if row.get("pxname") == "nodes" and row.get("svname", "").startswith("n"):
                states[row["svname"]] = row["status"].split(" ")[0]
        return states

    # --- faults ---------------------------------------------------------------------------

    def kill_node(self, i):
        self.nodes[i].kill(signal.SIGKILL)

    def restart_node(self, i):
        self.nodes[i].start()
        self.wait_node_ready(i)

    def stop_redis(self):
        self.redis.kill(signal.SIGTERM)

    # --- tear-down ------------------------------------------------------------------------

    def close(self):
        for p in [self.haproxy, *self.nodes, self.redis]:
            if p is not None:
                p.kill(signal.SIGTERM)
        self.pg.close()

    def logs(self):
        parts = []
        for p in [*self.nodes, self.haproxy, self.redis]:
            if p is not None:
                parts.append(f"--- {p.name} ({p.log}), last lines:\n{p.tail(30)}")
        try:
            with open(self.pg.log, errors="replace") as f:
                parts.append("--- postgres, last lines:\n" + "".join(f.readlines()[-20:]))
        except OSError:
            pass
        return "\n".join(parts)


class Monitor(threading.Thread):
    """Samples something every `interval` s into `samples` [(t, value)] until stopped."""

    def __init__(self, sample, interval=0.02):
        super().__init__(daemon=True)
        self.sample, self.interval = sample, interval
        self.samples = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            t = time.monotonic()
            try:
                v = self.sample()
            except Exception as e:  # noqa: BLE001 - recorded as a sample
                v = e
            self.samples.append((t, v))
            self.stopping.wait(self.interval)

    def stop(self):
        self.stopping.set()
        self.join()
        return self.samples
