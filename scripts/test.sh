#!/usr/bin/env bash
# `make test`: dependencies, static checks, Go tests (race detector), and
# the conformance suites against a live server.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

step() { printf '\n=== %s\n' "$*"; }

step "dependencies"
scripts/deps.sh

step "gofmt and go vet"
make -s lint

step "go test -race (writes conformance/REPORT.md)"
MINIKMS_OASIS_REPORT="$PWD/conformance/REPORT.md" go test -race -count=1 -timeout 15m ./...

step "conformance (PyKMIP client against a live minikms dev)"
make -s build
scripts/conformance.sh
