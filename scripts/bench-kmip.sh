#!/usr/bin/env bash
# KMIP throughput of a real miniKMS process: starts `minikms dev` on a
# fresh data directory (SQLite, durable audit on), runs `minikms bench`
# for each case, and prints one Markdown table row per case with the
# server's CPU time per operation (utime+stime from /proc/<pid>/stat over
# the warm-up and the measured window).
#
#   scripts/bench-kmip.sh                      # the default cases
#   BENCH_CASES="encrypt:1 encrypt:16" BENCH_DURATION=5s scripts/bench-kmip.sh
#   MINIKMS_BIN=/path/to/minikms scripts/bench-kmip.sh   # another server build
#                                  (the load generator stays bin/minikms)
#
# Cases are op:conns (ops: encrypt decrypt get create locate mix connect
# connect-resume). Payloads are 32 bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

cases=${BENCH_CASES:-"encrypt:1 encrypt:16 decrypt:16 get:16 create:16 locate:4 mix:16 connect:16 connect-resume:16"}
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
make -s build
client=bin/minikms
bin=${MINIKMS_BIN:-bin/minikms}
py=/usr/bin/python3
[[ -x $py ]] || py=python3

dir=$(mktemp -d)
port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
kmip=127.0.0.1:$(port)
http=127.0.0.1:$(port)
"$bin" dev --data-dir "$dir" --kmip-addr "$kmip" --http-addr "$http" >"$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 200); do
	if curl -sf "http://$http/readyz" >/dev/null 2>&1; then break; fi
	kill -0 $pid 2>/dev/null || { cat "$dir/server.log"; exit 1; }
	sleep 0.1
done

cpu() { awk '{print $14+$15}' /proc/$pid/stat; }
tck=$(getconf CLK_TCK)
echo "| case | ops/s | p50 ms | p95 ms | p99 ms | errors | server CPU µs/op | client CPU µs/op |"
echo "|---|---|---|---|---|---|---|---|"
for c in $cases; do
	op=${c%%:*}
	conns=${c##*:}
	c0=$(cpu)
	out=$("$client" bench --data-dir "$dir" --addr "$kmip" --server-name 127.0.0.1 --json --op "$op" --size 32 \
		--conns "$conns" --duration "$duration" --warmup "$warmup")
	c1=$(cpu)
	$py - "$op" "$conns" "$c0" "$c1" "$tck" "$out" <<'PY'
import json, sys
op, conns, c0, c1, tck, out = sys.argv[1:]
r = json.loads(out)
ops = r["ops"] + r.get("warmup_ops", 0)
server = (float(c1) - float(c0)) / float(tck) * 1e6 / max(ops, 1)
l = r["latency_ms"]
errors = sum(r["errors"].values())
print(f'| {op} ×{conns} | {r["ops_per_s"]:,.0f} | {l["p50"]:.2f} | {l["p95"]:.2f} | {l["p99"]:.2f} | {errors} | {server:.0f} | {r["client_cpu_us_per_op"]:.0f} |')
PY
done
