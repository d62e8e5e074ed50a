#!/usr/bin/env bash
# `parley bench chat` with visitors on one chat node and agents on another
# (docs/benchmarks.md, "Chat across nodes"): a `parley broker`, node 1
# `serve --postgres` (every role), node 2 `chat --postgres`, both on a fresh
# PostgreSQL database, everything on this machine.
#   scripts/bench-crossnode.sh BINARY [CONVERSATIONS RATE]   (default 75 4 = 300 msg/s)
# PostgreSQL is BENCH_POSTGRES (default postgres://postgres@127.0.0.1:5432).
# After the bench's report it prints the CPU each process used during the
# bench (from /proc; PostgreSQL summed over its processes), each node's
# version-conflict redos, deferred operations, writer busy time, live bus
# latency and garbage collections, and the nodes' first warnings.
set -euo pipefail
bin=$1; conv=${2:-75}; rate=${3:-4}
"$(dirname "$0")/machine-speed.sh"
pg=${BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432}
dir=$(mktemp -d)
db=parley_cross_$$
psql "$pg/postgres" -qc "CREATE DATABASE $db" >/dev/null
url="$pg/$db?sslmode=disable"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$dir"
  psql "$pg/postgres" -qc "DROP DATABASE $db" >/dev/null
}
trap cleanup EXIT
ready() { for _ in $(seq 1 120); do curl -sf "$1/readyz" >/dev/null && return; sleep 0.5; done; echo "$1 not ready" >&2; tail -n 20 "$dir"/*.log >&2; exit 1; }
"$bin" broker --data "$dir/broker" --port 19094 >"$dir/broker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "broker is running" "$dir/broker.log" 2>/dev/null && break; sleep 0.2; done
"$bin" serve --data "$dir/n1" --postgres "$url" --brokers 127.0.0.1:19094 --node-id n1 \
  --addr 127.0.0.1:18080 --log-level warn >"$dir/n1.log" 2>&1 &
pids+=($!)
ready http://127.0.0.1:18080
"$bin" chat --data "$dir/n2" --postgres "$url" --brokers 127.0.0.1:19094 --node-id n2 \
  --addr 127.0.0.1:18081 --public-url http://127.0.0.1:18080 --log-level warn >"$dir/n2.log" 2>&1 &
pids+=($!)
ready http://127.0.0.1:18081
# CPU seconds (user + system) of the given processes, from /proc.
cpu() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
hz=$(getconf CLK_TCK)
before=()
for p in "${pids[@]}" "$(pgrep -x postgres | tr '\n' ' ')"; do before+=("$(cpu $p)"); done
start=$(date +%s.%N)
"$bin" bench chat --url http://127.0.0.1:18080 --agent-url http://127.0.0.1:18081 \
  --admin-file "$dir/n1/initial-admin.txt" --conversations "$conv" --rate "$rate" --duration 20s --brokers 127.0.0.1:19094
# Where the machine's CPU went during the bench (setup included), per process.
secs=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {print b - a}')
i=0
for name in broker "node 1 (serve)" "node 2 (chat)" "postgresql (all its processes)"; do
  set -- "${pids[@]}" "$(pgrep -x postgres | tr '\n' ' ')"
  shift $i
  used=$(( $(cpu $1) - ${before[$i]} ))
  awk -v n="$name" -v u="$used" -v hz="$hz" -v s="$secs" 'BEGIN {printf "cpu %-31s %6.1f CPU-s  %4.2f cores over %.1f s\n", n, u / hz, u / hz / s, s}'
  i=$((i + 1))
done
# Per node: redos, operations left for the next batch, the writer's busy
# time and batch size, the live bus's latency and garbage collections.
for n in 18080 18081; do
  curl -s http://127.0.0.1:$n/metrics | awk -v n=":$n" '
    /^parley_chat_conflict_redos_total / {redos = $2}
    /^parley_chat_deferred_ops_total\{/ {match($1, /kind="[a-z]+"/); kinds = kinds sprintf(" %s %d", substr($1, RSTART + 6, RLENGTH - 7), $2); deferred += $2}
    /^parley_chat_commit_seconds_sum / {busy = $2}
    /^parley_chat_commit_seconds_count / {commits = $2}
    /^parley_chat_commit_batch_ops_sum / {ops = $2}
    /^parley_live_latency_seconds_sum / {live = $2}
    /^parley_live_latency_seconds_count / {frames = $2}
    /^go_gc_duration_seconds_count / {gcs = $2}
    END {printf "node %s parley_chat_conflict_redos_total %d, deferred ops %d (%s), writer busy %.1f s in %d commits of %.1f ops, live bus %.1f ms on average, %d GCs\n",
      n, redos, deferred, substr(kinds, 2), busy, commits, commits ? ops / commits : 0, frames ? 1000 * live / frames : 0, gcs}'
done
echo "--- first warnings and errors of the nodes"
grep -h -m10 -E '"level":"(WARN|ERROR)"' "$dir/n1.log" "$dir/n2.log" || true
