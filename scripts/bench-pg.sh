#!/usr/bin/env bash
# KMIP throughput on PostgreSQL next to SQLite, same machine, same run:
# scripts/bench-kmip.sh once on SQLite (the dev default) and once with
# MINIKMS_DB_URL pointing at a private PostgreSQL (scripts/pg.sh, fsync and
# synchronous_commit on; or PG_BENCH_URL, a database URL of your own).
#
#   scripts/bench-pg.sh
#   BENCH_CASES="create:16 encrypt:16" BENCH_DURATION=5s scripts/bench-pg.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_CASES=${BENCH_CASES:-"create:1 create:16 encrypt:1 encrypt:16 get:16 mix:16"}
export BENCH_DURATION=${BENCH_DURATION:-10s}

echo "### SQLite (embedded, durable audit on)"
echo
env -u MINIKMS_DB_URL scripts/bench-kmip.sh

url=${PG_BENCH_URL:-}
if [ -z "$url" ]; then
  pgdir=$(mktemp -d)
  trap 'scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true' EXIT
  url=$(scripts/pg.sh start "$pgdir")
fi
echo
echo "### PostgreSQL $(psql -XAtc 'SHOW server_version' "$url" 2>/dev/null || true) (one node, durable audit on)"
echo
MINIKMS_DB_URL=$url scripts/bench-kmip.sh
