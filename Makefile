# miniKMS — see README.md.
GO        ?= go
BIN       := bin/minikms
VERSION   := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION) -X github.com/minikms/minikms/kmip.ServerVersion=$(VERSION)
DATA_DIR  ?= ./.minikms

.PHONY: build run test lint bench bench-compare deps conformance clean

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/minikms

# Start a development server: embedded store, generated PKI, KMIP on
# 127.0.0.1:5696, HTTP on 127.0.0.1:8080.
run: build
	$(BIN) dev --data-dir $(DATA_DIR)

# Every test: installs what it needs (as root on Debian), then unit,
# integration and conformance suites.
test:
	scripts/test.sh

# Install the test dependencies only.
deps:
	scripts/deps.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1)
	$(GO) vet ./...

# The OASIS vector replay (writes conformance/REPORT.md) and the PyKMIP suite.
conformance: build
	MINIKMS_OASIS_REPORT=$(CURDIR)/conformance/REPORT.md $(GO) test -count=1 -run TestOASISVectors -v ./conformance/ | grep -E 'OASIS vectors|FAIL|ok'
	scripts/conformance.sh

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./engine/ ./store/... ./kmip/

# miniKMS (SQLite, and PostgreSQL when it can start) next to Debian's PyKMIP
# server, same machine and load generator; writes the table into
# BENCHMARKS.md. A few minutes; not part of `make test`.
bench-compare:
	scripts/bench-compare.sh --write

clean:
	rm -rf bin
