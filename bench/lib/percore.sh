# Sourced by bench/oauth.sh and bench/http-check.sh: the per-core modes, starting and stopping
# one server at a time, and profiling it. The caller sets SELF (its name, for messages), work
# (a scratch directory) and cur_pid (the running server, or empty), and defines `die`.
#   PIN=1 (default) | 0 | both      → MODES; set_mode MODE sets SRV, LOAD and THREADS
#   THREADS (unpinned wrk threads, default 2), THREADS_PINNED (default 1)
#   WARMUP (default 2s, 0 for none): wrk untimed before each measurement

PIN=${PIN:-1}
case $PIN in
  1) MODES=pinned ;;
  0) MODES=unpinned ;;
  both) MODES="pinned unpinned" ;;
  *) echo "$SELF: PIN is 1, 0 or both" >&2; exit 2 ;;
esac
UNPINNED_THREADS=${THREADS:-2}

# The mode of the current measurement: where servers and wrk run, and wrk's threads.
set_mode() {
  MODE=$1
  if [ "$MODE" = pinned ]; then
    SRV=(taskset -c 0) LOAD=(taskset -c 1) THREADS=${THREADS_PINNED:-1}
  else
    SRV=() LOAD=() THREADS=$UNPINNED_THREADS
  fi
}
set_mode "${MODES%% *}"

wait_ready() { # url, log file
  for _ in $(seq 1 150); do
    curl -sf -o /dev/null "$1" && return 0
    kill -0 "$cur_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$SELF: no answer from $1; the server's log:" >&2
  cat "$2" >&2
  exit 1
}

stop() { kill "$cur_pid" 2>/dev/null || true; wait "$cur_pid" 2>/dev/null || true; cur_pid=; }

# The release binaries: TESSERA_BIN and CEILING_BIN, or built here.
release_bin() { # package, binary name, override → the path
  if [ -n "$3" ]; then
    echo "$3"
  else
    cargo build --release -q -p "$1" >&2
    echo "${CARGO_TARGET_DIR:-target}/release/$2"
  fi
}

profile_tools() {
  command -v perf >/dev/null || apt-get install -y -qq linux-perf >/dev/null
  command -v inferno-flamegraph >/dev/null || cargo install -q inferno --no-default-features --features cli
  mkdir -p "$PROFILE_DIR"
}

profile() { # name, url, lua file: perf samples of the running server while wrk loads it
  local data="$work/$1.perf"
  perf record -q -F 499 --call-graph dwarf,32768 -p "$cur_pid" -o "$data" -- sleep 8 >/dev/null 2>&1 &
  local perf_pid=$!
  "${LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d10s -s "$3" "$2" >"$PROFILE_DIR/$1.wrk" 2>&1
  wait "$perf_pid" || die "perf record failed (perf_event_paranoid? run as root)"
  perf script -i "$data" 2>/dev/null | inferno-collapse-perf >"$PROFILE_DIR/$1.folded"
  inferno-flamegraph --minwidth 1 --title "Tessera $1, pinned to one core ($(git rev-parse --short HEAD))" \
    <"$PROFILE_DIR/$1.folded" >"$PROFILE_DIR/$1.svg"
  echo "$SELF: $PROFILE_DIR/$1.svg" >&2
}

measure() { # server, operation, url, lua file: appends "mode server operation req/s p50 p99" (ms)
  local out
  # Untimed first (WARMUP, default 2s): a JIT (Node's) or a cold cache is not what is compared.
  if [ "${WARMUP:-2s}" != 0 ]; then
    "${LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${WARMUP:-2s}" -s "$4" "$3" >/dev/null 2>&1 || true
  fi
  out=$("${LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$4" "$3" 2>&1)
  if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
    echo "$SELF: $1 $2 had failed requests, the figures are not valid:" >&2
    echo "$out" >&2
    exit 1
  fi
  awk -v m="$MODE" -v s="$1" -v o="$2" '
    function ms(v,   u) { u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
                         return (u == "us") ? v / 1000 : (u == "s") ? v * 1000 : (u == "m") ? v * 60000 : v }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { if (rps == "" || p99 == "") exit 1; printf "%s %s %s %s %.3f %.3f\n", m, s, o, rps, p50, p99 }' \
    <<<"$out" >>"$work/results" || die "could not read wrk's output for $1 $2: $out"
}

rounds() { # the function for odd rounds, the one for even rounds: ROUNDS × MODES of them
  local round mode
  for round in $(seq 1 "$ROUNDS"); do
    for mode in $MODES; do
      set_mode "$mode"
      echo "round $round/$ROUNDS, $MODE" >&2
      if [ $((round % 2)) = 1 ]; then "$1"; else "$2"; fi
    done
  done
}
