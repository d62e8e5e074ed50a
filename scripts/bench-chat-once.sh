#!/usr/bin/env bash
# One `parley bench chat` run against a fresh `parley serve` of a given
# binary, for comparing builds on the same machine (docs/benchmarks.md,
# "Latency and CPU per message"):
#   scripts/bench-chat-once.sh BINARY [CONVERSATIONS RATE]   (default 500 6 = 3,000 msg/s)
# With BENCH_POSTGRES=postgres://postgres@127.0.0.1:5432 the chat, moderation
# and access state go to a fresh database there (`serve --postgres`).
# Build a commit's binary with: git worktree add /tmp/wt REV && (cd /tmp/wt && go build -o /tmp/parley-REV ./cmd/parley)
set -euo pipefail
bin=$1; conv=${2:-500}; rate=${3:-6}
"$(dirname "$0")/machine-speed.sh"
data=$(mktemp -d)
store=()
if [ -n "${BENCH_POSTGRES:-}" ]; then
  db=parley_bench_$$
  psql "$BENCH_POSTGRES/postgres" -qc "CREATE DATABASE $db" >/dev/null
  store=(--postgres "$BENCH_POSTGRES/$db?sslmode=disable")
fi
"$bin" serve --data "$data" --addr 127.0.0.1:18080 --kafka-port 19092 --log-level warn "${store[@]}" >/dev/null 2>&1 &
pid=$!
cleanup() {
  kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$data"
  if [ -n "${db:-}" ]; then psql "$BENCH_POSTGRES/postgres" -qc "DROP DATABASE $db" >/dev/null; fi
}
trap cleanup EXIT
for _ in $(seq 1 120); do curl -sf http://127.0.0.1:18080/readyz >/dev/null && break; sleep 0.5; done
"$bin" bench chat --url http://127.0.0.1:18080 --admin-file "$data/initial-admin.txt" \
  --conversations "$conv" --rate "$rate" --duration 20s --brokers 127.0.0.1:19092
