#!/usr/bin/env bash
# Parley's whole test suite, as the README and CI run it:
#   1. installs what the tests need when missing (Debian's clickhouse-server,
#      clickhouse-client and chromium; axe-core from the npm registry),
#   2. starts a private ClickHouse on free loopback ports with its data in a
#      temporary directory, and the machine's PostgreSQL when it is stopped
#      (tests create and drop a database of their own in it),
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
command -v pg_ctlcluster >/dev/null || need+=(postgresql)
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

# PostgreSQL: tests use the machine's server (PARLEY_TEST_POSTGRES, default
# postgres://postgres@127.0.0.1:5432/postgres) and fail, not skip, without it.
export PARLEY_TEST_POSTGRES="${PARLEY_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  step "starting PostgreSQL"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  version=$(ls /etc/postgresql | sort -n | tail -1)
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done
  pg_isready -h 127.0.0.1 -p 5432
fi

# axe-core (the accessibility engine the browser tests inject) is a test
# dependency from the npm registry, kept out of the repository in .test-deps/.
if [ ! -f .test-deps/node_modules/axe-core/axe.min.js ] && [ -z "${PARLEY_AXE_CORE:-}" ]; then
  if ! command -v npm >/dev/null; then
    step "installing npm (for axe-core)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  step "installing axe-core@4 into .test-deps/"
  npm install --prefix .test-deps --no-audit --no-fund --silent axe-core@4
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
