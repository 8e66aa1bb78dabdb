# Shared by .ci/forward-auth.sh (the real-nginx test) and bench/forward-auth.sh (its benchmark):
# a Tessera server with a forward-auth route table, and nginx in front of a tiny upstream with
# Tessera as its `auth_request` target. Source it; it defines functions and sets nothing else.
#
# The upstream is a second nginx server block that echoes the identity headers it received
# (`subject=… agency=… account=… scopes=… actor=…`), so the test reads what reached it.

fa_die() { echo "forward-auth: $*" >&2; exit 1; }
fa_free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# nginx from the Debian package, installed when missing.
fa_nginx_bin() {
  local bin
  bin=$(command -v nginx 2>/dev/null || true)
  [ -n "$bin" ] || [ ! -x /usr/sbin/nginx ] || bin=/usr/sbin/nginx
  if [ -z "$bin" ]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null 2>&1 ||
      fa_die "cannot install nginx"
    bin=/usr/sbin/nginx
  fi
  echo "$bin"
}

# The route table of the protected service (the `[forward_auth]` section of --config).
fa_tessera_config() { # file
  cat >"$1" <<'EOF'
[forward_auth]
audience = "https://contacts.test"

[[forward_auth.routes]]
method = "GET"
path = "/agencies/{agency}/contacts/{id}"
permission = "contacts.read"
resource = "contact"

[[forward_auth.routes]]
method = "POST"
path = "/agencies/{agency}/contacts"
permission = "contacts.write"

[[forward_auth.routes]]
method = "GET"
path = "/agencies/{agency}/accounts/{account}/contacts"
permission = "contacts.read"
EOF
}

# nginx.conf: NPORT (the protected entry), DPORT (straight to the upstream, for the benchmark),
# UPORT (the upstream), TPORT (Tessera). Runs as the current user, in the foreground.
fa_nginx_config() { # dir tport uport nport dport
  local dir=$1 tport=$2 uport=$3 nport=$4 dport=$5 user=""
  mkdir -p "$dir/tmp" "$dir/logs"
  # As root the workers would switch to `nobody`, who cannot read the private temp dir.
  [ "$(id -u)" != 0 ] || user="user root;"
  cat >"$dir/nginx.conf" <<EOF
$user
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;

  # Idle connections kept per worker: above the peak in flight (every request holds two, the
  # auth subrequest and the upstream), or nginx closes the excess after each use and pays a
  # TCP handshake per request (with 32, 42k sockets in TIME_WAIT and a third of the throughput).
  upstream tessera { server 127.0.0.1:$tport; keepalive 256; }
  upstream service { server 127.0.0.1:$uport; keepalive 256; }

  # The protected service: every request is first asked of Tessera.
  server {
    listen 127.0.0.1:$nport;

    location = /_tessera_auth {
      internal;
      proxy_pass http://tessera/v1/forward-auth;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method \$request_method;
      proxy_set_header X-Original-URI \$request_uri;
    }

    location / {
      auth_request /_tessera_auth;
      auth_request_set \$tessera_subject \$upstream_http_x_tessera_subject;
      auth_request_set \$tessera_agency \$upstream_http_x_tessera_agency;
      auth_request_set \$tessera_account \$upstream_http_x_tessera_account;
      auth_request_set \$tessera_scopes \$upstream_http_x_tessera_scopes;
      auth_request_set \$tessera_actor \$upstream_http_x_tessera_actor;
      auth_request_set \$tessera_challenge \$upstream_http_www_authenticate;
      # Set (or, when empty, removed): a client's own X-Tessera-* headers never pass.
      proxy_set_header X-Tessera-Subject \$tessera_subject;
      proxy_set_header X-Tessera-Agency \$tessera_agency;
      proxy_set_header X-Tessera-Account \$tessera_account;
      proxy_set_header X-Tessera-Scopes \$tessera_scopes;
      proxy_set_header X-Tessera-Actor \$tessera_actor;
      # The credential stays at the edge.
      proxy_set_header Authorization "";
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://service;
    }
    error_page 401 = @unauthorized;
    location @unauthorized {
      add_header WWW-Authenticate \$tessera_challenge always;
      return 401 "unauthorized\n";
    }
  }

  # The same upstream without forward auth (the benchmark's reference).
  server {
    listen 127.0.0.1:$dport;
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass http://service;
    }
  }

  # The upstream: echoes the identity headers it received.
  server {
    listen 127.0.0.1:$uport;
    default_type text/plain;
    location / {
      return 200 "subject=\$http_x_tessera_subject agency=\$http_x_tessera_agency account=\$http_x_tessera_account scopes=\$http_x_tessera_scopes actor=\$http_x_tessera_actor authorization=\$http_authorization\n";
    }
  }
}
EOF
}

# Waits until URL answers (any status), or fails naming what did not start.
fa_wait_for() { # url pid what
  for _ in $(seq 1 150); do
    curl -s -o /dev/null "$1" && return 0
    kill -0 "$2" 2>/dev/null || fa_die "$3 exited before it was ready"
    sleep 0.1
  done
  fa_die "$3 did not answer at $1"
}
