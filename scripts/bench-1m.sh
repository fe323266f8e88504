#!/usr/bin/env bash
# miniKMS with 1,000 and with 1,000,000 stored objects (SQLite, durable
# audit on): start-up time, resident memory, Get and Encrypt latency; and
# new mTLS connections per second. Not part of `make test`: filling a
# million objects takes several minutes and about 1.3 GB of disk.
#
#   scripts/bench-1m.sh
#   BENCH_COUNTS="1000 100000" BENCH_DURATION=5s scripts/bench-1m.sh
#
# For each count: a fresh data directory is created by `minikms dev` (then
# stopped), filled by internal/bulkfill (real AES-256 keys of tenant acme,
# made by engine.Create, wrapped and committed durably, 256 creates in
# flight), then the server is started again and measured:
#   - start-up: from starting the process to the first 200 of /readyz;
#   - RSS after start-up (VmRSS) and peak RSS over the whole run (VmHWM);
#   - `minikms bench` cases (default get:1 encrypt:1 get:16 encrypt:16,
#     and connect:16 connect-resume:16 on the first count only).
# A Get of the bench's own key hits the engine's cache; so that the size
# of the store is also seen on the cold path, right after start-up
# `go test -run TestColdGets ./internal/bulkfill/` times KMIP Gets of 200
# random filled objects over one connection (each a store read by primary
# key, an unwrap and a cache insert): `minikms bench` addresses one key.
set -euo pipefail
cd "$(dirname "$0")/.."

counts=${BENCH_COUNTS:-"1000 1000000"}
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
cases=${BENCH_CASES:-"get:1 encrypt:1 get:16 encrypt:16"}
conncases=${BENCH_CONN_CASES:-"connect:16 connect-resume:16"}
make -s build
bin=bin/minikms
py=/usr/bin/python3
[[ -x $py ]] || py=python3
port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
root=$(mktemp -d ${BENCH_TMP:-/tmp}/minikms-1m.XXXXXX)
pid=
trap '[[ -n $pid ]] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$root"' EXIT

# start DIR: starts the server; sets pid, kmip, http and startup_ms.
start() {
	local d=$1
	kmip=127.0.0.1:$(port) http=127.0.0.1:$(port)
	local t0 t1
	t0=$(date +%s%N)
	"$bin" dev --data-dir "$d" --kmip-addr "$kmip" --http-addr "$http" >>"$d/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 3000); do
		if curl -sf "http://$http/readyz" >/dev/null 2>&1; then break; fi
		kill -0 $pid 2>/dev/null || { cat "$d/server.log" >&2; exit 1; }
		sleep 0.01
	done
	t1=$(date +%s%N)
	startup_ms=$(((t1 - t0) / 1000000))
}
stop() { kill $pid; wait $pid 2>/dev/null || true; pid=; }
status() { awk -v k="$1" '$1==k":"{print $2}' /proc/$pid/status; }

tck=$(getconf CLK_TCK)
echo "| objects | case | ops/s | p50 ms | p99 ms | errors | server CPU µs/op | load |"
echo "|---|---|---|---|---|---|---|---|"
summary=$root/summary
first=1
for n in $counts; do
	d=$root/$n
	mkdir -p "$d"
	start "$d"
	stop
	t0=$(date +%s)
	MINIKMS_FILL_DIR=$d MINIKMS_FILL_COUNT=$n go test -count=1 -timeout 3h -run 'TestFill$' -v ./internal/bulkfill/ >"$d/fill.log" 2>&1 ||
		{ cat "$d/fill.log" >&2; exit 1; }
	fill_s=$(($(date +%s) - t0))
	dbsize=$(du -sm "$d" | cut -f1)
	# Start-up, twice (the first start after the fill also checkpoints the WAL).
	start "$d"
	su1=$startup_ms
	stop
	sync
	start "$d"
	su2=$startup_ms
	rss=$(status VmRSS)
	cold=$(MINIKMS_COLD_ADDR=$kmip MINIKMS_COLD_DIR=$d go test -count=1 -run 'TestColdGets$' -v ./internal/bulkfill/ 2>&1 | awk '/cold Get p50/{print $0}' | sed 's/.*cold Get //')
	cs=$cases
	[[ $first == 1 ]] && cs="$cases $conncases"
	for c in $cs; do
		op=${c%%:*}
		conns=${c##*:}
		c0=$(awk '{print $14+$15}' /proc/$pid/stat)
		out=$("$bin" bench --data-dir "$d" --addr "$kmip" --server-name 127.0.0.1 --json --op "$op" --size 32 \
			--conns "$conns" --duration "$duration" --warmup "$warmup")
		c1=$(awk '{print $14+$15}' /proc/$pid/stat)
		$py - "$n" "$op" "$conns" "$c0" "$c1" "$tck" "$(cut -d' ' -f1 /proc/loadavg)" "$out" <<'PY'
import json, sys
n, op, conns, c0, c1, tck, load, out = sys.argv[1:]
r = json.loads(out)
ops = r["ops"] + r.get("warmup_ops", 0)
server = (float(c1) - float(c0)) / float(tck) * 1e6 / max(ops, 1)
l = r["latency_ms"]
print(f'| {int(n):,} | {op} ×{conns} | {r["ops_per_s"]:,.0f} | {l["p50"]:.2f} | {l["p99"]:.2f} | {sum(r["errors"].values())} | {server:.0f} | {load} |')
PY
	done
	hwm=$(status VmHWM)
	stop
	printf '| %s | %s s | %s MiB | %s ms | %s ms | %s MiB | %s MiB | %s |\n' "$(printf "%'d" "$n")" "$fill_s" "$dbsize" "$su1" "$su2" \
		$((rss / 1024)) $((hwm / 1024)) "$cold" >>"$summary"
	rm -rf "$d"
	first=0
done
echo
echo "| objects | fill time | data dir | start-up (first after fill) | start-up (again) | RSS after start-up | peak RSS | cold Get of 200 random objects |"
echo "|---|---|---|---|---|---|---|---|"
cat "$summary"
