#!/usr/bin/env bash
# Prints how fast this machine runs a fixed single-core job right now
# (SHA-256 of 64 MiB of zeros). A shared virtual machine's speed changes
# from hour to hour (docs/benchmarks.md has runs of one build 40% apart in
# CPU per message), so the benchmark scripts print this before each run:
# compare runs taken at different times by it, and alternate builds.
set -euo pipefail
start=$(date +%s.%N)
head -c 64M /dev/zero | sha256sum >/dev/null
awk -v a="$start" -v b="$(date +%s.%N)" \
  'BEGIN { printf "machine speed: %.0f MB/s of SHA-256 on one core (scripts/machine-speed.sh)\n", 64 * 1.048576 / (b - a) }'
