# syntax=docker/dockerfile:1
# miniKMS: multi-stage build. The binary needs cgo for the PKCS#11 (HSM)
# backend, so it links against glibc and runs on Debian slim.
#
#   docker build -t minikms .
#   docker run --rm -p 5696:5696 -p 8080:8080 \
#     -e MINIKMS_ROOT_KEY_FILE=/run/secrets/root_key -v ./root.key:/run/secrets/root_key:ro \
#     -e MINIKMS_DB_URL=/var/lib/minikms/minikms.db -v minikms-data:/var/lib/minikms minikms
#
# See deploy/compose.yaml for a PostgreSQL-backed setup and docs/RUNBOOK.md.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: a source change does not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=container
RUN CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X github.com/minikms/minikms/kmip.ServerVersion=${VERSION}" \
      -o /out/minikms ./cmd/minikms \
 && /out/minikms version

FROM debian:bookworm-slim AS runtime
# ca-certificates: PostgreSQL over TLS. No shell tools beyond the base.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 minikms \
 && useradd --system --uid 10001 --gid minikms --home-dir /var/lib/minikms --shell /usr/sbin/nologin minikms \
 && install -d -o minikms -g minikms -m 0700 /var/lib/minikms /etc/minikms
COPY --from=build /out/minikms /usr/local/bin/minikms
USER minikms:minikms
WORKDIR /var/lib/minikms
ENV MINIKMS_KMIP_ADDR=0.0.0.0:5696 \
    MINIKMS_HTTP_ADDR=0.0.0.0:8080 \
    MINIKMS_DB_URL=/var/lib/minikms/minikms.db
VOLUME ["/var/lib/minikms"]
# 5696: KMIP over mutual TLS. 8080: health, readiness, metrics, CRLs, and
# the HTTPS auditor API (mTLS) on the same port.
EXPOSE 5696 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/minikms"]
CMD ["serve"]
