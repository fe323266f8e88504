#!/usr/bin/env bash
# Runs the PyKMIP conformance suite against a live `minikms dev` started on
# free ports with a temporary data directory.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin/minikms}
PY=/usr/bin/python3   # Debian's interpreter: it has python3-pykmip
work=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

freeport() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
kport=$(freeport); hport=$(freeport)
"$BIN" dev --data-dir "$work/data" --kmip-addr "127.0.0.1:$kport" --http-addr "127.0.0.1:$hport" >"$work/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if $PY -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$hport/readyz').status==200 else 1)" 2>/dev/null; then break; fi
  kill -0 "$pid" 2>/dev/null || { cat "$work/server.log"; echo "minikms dev exited" >&2; exit 1; }
  sleep 0.1
done
export MINIKMS_PYKMIP_CONF="$work/data/certs/pykmip.conf"
status=0
$PY -m pytest -q -p no:cacheprovider conformance/pykmip "$@" || status=$?
if [ $status -ne 0 ]; then echo "--- server log"; tail -50 "$work/server.log"; fi
exit $status
