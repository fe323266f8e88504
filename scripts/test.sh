#!/usr/bin/env bash
# `make test`: dependencies, static checks, Go tests (race detector), and
# the conformance suites against a live server.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
scripts/deps.sh

# store/postgres's tests need a server: without one given, a private one
# (scripts/pg.sh), stopped and removed on exit; its tests may then not skip.
if [ -z "${MINIKMS_TEST_DB_URL:-}" ]; then
  step "private PostgreSQL for store/postgres"
  pgdir=$(mktemp -d)
  pgsh=$PWD/scripts/pg.sh
  trap '"$pgsh" stop "$pgdir" >/dev/null 2>&1 || true' EXIT
  MINIKMS_TEST_DB_URL=$("$pgsh" start "$pgdir")
  export MINIKMS_TEST_DB_URL MINIKMS_REQUIRE_PG=1
  echo "$MINIKMS_TEST_DB_URL"
fi

step "gofmt and go vet"
make -s lint

step "go test -race (writes conformance/REPORT.md)"
MINIKMS_OASIS_REPORT="$PWD/conformance/REPORT.md" go test -race -count=1 -timeout 15m ./...

step "conformance (PyKMIP client against a live minikms dev)"
make -s build
scripts/conformance.sh
