#!/usr/bin/env bash
# Parley's whole test suite, as the README and CI run it:
#   1. installs what the tests need when missing (Debian's clickhouse-server,
#      clickhouse-client and chromium),
#   2. starts a private ClickHouse on free loopback ports with its data in a
#      temporary directory,
#   3. checks formatting, runs go vet and go test -race on every package,
#   4. stops what it started, also when tests fail.
# Extra arguments go to `go test` (for example: scripts/test.sh -run Widget ./chatsvc/).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s ==\n' "$*"; }

if ! command -v go >/dev/null; then
  echo "test.sh: Go is not on PATH; install Go 1.26 first" >&2
  exit 1
fi

need=()
command -v clickhouse-server >/dev/null || need+=(clickhouse-server)
command -v clickhouse-client >/dev/null || need+=(clickhouse-client)
command -v chromium >/dev/null || need+=(chromium fonts-noto-color-emoji)
if [ ${#need[@]} -gt 0 ]; then
  step "installing ${need[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

chdir=$(mktemp -d -t parley-clickhouse.XXXXXX)
cleanup() {
  scripts/clickhouse.sh stop "$chdir" >/dev/null 2>&1 || true
  rm -rf "$chdir"
}
trap cleanup EXIT INT TERM

step "starting a private ClickHouse"
eval "$(scripts/clickhouse.sh start "$chdir")"
export PARLEY_TEST_CLICKHOUSE
echo "ClickHouse at $PARLEY_TEST_CLICKHOUSE"

export PARLEY_ARTIFACTS="${PARLEY_ARTIFACTS:-$PWD/test-artifacts}"
mkdir -p "$PARLEY_ARTIFACTS"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "go test -race"
if [ $# -gt 0 ]; then
  go test -race -count=1 -timeout 25m "$@"
else
  go test -race -count=1 -timeout 25m ./...
fi
echo "screenshots and other test artifacts: $PARLEY_ARTIFACTS"
