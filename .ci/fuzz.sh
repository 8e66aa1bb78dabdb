#!/usr/bin/env bash
# Fuzzes every parser of untrusted text (fuzz/, docs/FUZZING.md) for FUZZ_SECONDS each
# (default 60), on a temporary copy of its committed corpus, and fails if any target crashes
# (panic, abort, stack overflow, timeout, out of memory). Crashing inputs are kept in
# fuzz/artifacts/<target>/ (ignored by git). Installs cargo-fuzz into ~/.cargo/bin if missing.
#
# Stable toolchain: `-s none` builds without a sanitizer, so cargo-fuzz passes no `-Z` flag
# (libFuzzer's coverage instrumentation, `-C passes=sancov-module`, is stable). The stack is
# 2 MiB, as on the server's tokio worker threads; fuzz/src/lib.rs turns an overflow into a
# recorded crash. FUZZ_TARGETS="jwt catalog" runs a subset; FUZZ_JOBS (default: the cores) run at once.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
# RUST_LIB_BACKTRACE=0: no backtrace of cargo-fuzz itself when a target fails.
export PATH="$HOME/.cargo/bin:$PATH" CARGO_TERM_COLOR=never RUST_LIB_BACKTRACE=0
SECONDS_EACH=${FUZZ_SECONDS:-60}
RSS_MB=${FUZZ_RSS_MB:-1024}
# The instrumented build (every dependency, about 10 minutes from nothing on 2 cores) is kept
# between runs outside the clone, like a CI cache: FUZZ_TARGET_DIR (default
# ~/.cache/tessera/fuzz-target). Cargo rebuilds whatever changed, so a stale cache costs time,
# never correctness.
TARGET_DIR=${FUZZ_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera/fuzz-target}
FLAGS=(--sanitizer none --debug-assertions --target-dir "$TARGET_DIR")

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz (crates.io)"
  cargo install --locked cargo-fuzz
fi

echo "==> building the fuzz targets ($TARGET_DIR)"
cargo fuzz build "${FLAGS[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# One libFuzzer process per target, FUZZ_JOBS at a time (default: one per core); each still
# gets its SECONDS_EACH of one core.
JOBS=${FUZZ_JOBS:-$(nproc)}
fuzz_one() { # target → $work/<target>.log, and .rc with the exit status
  local target=$1
  mkdir -p "$work/$target" "artifacts/$target"
  cp -R "corpus/$target/." "$work/$target/"
  local rc=0
  (
    ulimit -s 2048
    cargo fuzz run "${FLAGS[@]}" "$target" "$work/$target" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" \
      -timeout=10 -print_final_stats=1 -close_fd_mask=1
  ) >"$work/$target.log" 2>&1 || rc=$?
  echo "$rc" >"$work/$target.rc"
}
targets=(${FUZZ_TARGETS:-$(cargo fuzz list)})
running=0
for target in "${targets[@]}"; do
  if ((running >= JOBS)); then
    wait -n || true
    running=$((running - 1))
  fi
  echo "==> fuzzing $target for ${SECONDS_EACH}s"
  fuzz_one "$target" &
  running=$((running + 1))
done
wait || true
failed=()
for target in "${targets[@]}"; do
  echo "==> $target"
  if [ "$(cat "$work/$target.rc" 2>/dev/null || echo missing)" != 0 ]; then
    failed+=("$target")
    # The crash report from its first line, without libFuzzer's progress lines and
    # cargo-fuzz's byte dump.
    grep -Ev '^(INFO:|WARNING: Failed to find function|#[0-9]+|\s+\[[0-9, ]+\]$)' \
      "$work/$target.log" |
      sed -n '/panicked at\|==tessera-fuzz==\|ERROR: libFuzzer\|ERROR: AddressSanitizer/,$p' |
      head -n 80
  fi
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|^#[0-9]+ +DONE' \
    "$work/$target.log" || true
done

if ((${#failed[@]})); then
  echo "FUZZING FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/; reproduce with" \
    "\`cargo fuzz run -s none -a <target> <file>\` under \`ulimit -s 2048\`)" >&2
  exit 1
fi
echo "==> all fuzz targets ran ${SECONDS_EACH}s without a crash"
