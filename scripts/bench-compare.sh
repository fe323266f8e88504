#!/usr/bin/env bash
# miniKMS next to PyKMIP, same machine, same run, same load generator.
#
#   scripts/bench-compare.sh            # print the side-by-side table
#   scripts/bench-compare.sh --write    # also put it into BENCHMARKS.md
#   make bench-compare                  # = scripts/bench-compare.sh --write
#
#   BENCH_CASES="encrypt:16 get:16" BENCH_DURATION=5s scripts/bench-compare.sh
#   BENCH_PG=0 scripts/bench-compare.sh  # skip PostgreSQL
#
# Starts, each on a fresh directory and a free loopback port:
#   - miniKMS (`minikms dev`, SQLite, durable audit on);
#   - miniKMS on PostgreSQL (scripts/pg.sh, fsync on) when PostgreSQL can be
#     started here (BENCH_PG=0 skips it);
#   - Debian's PyKMIP server (python3-pykmip 0.10, installed when missing),
#     TLS 1.2 with client certificates, its SQLite database, using the
#     server certificate and CA of the miniKMS dev bundle (so the same
#     client certificate, acme/app, is accepted by both).
# Then runs every case against each server in turn (miniKMS, PostgreSQL,
# PyKMIP, case by case, so the machine's load drifts over all of them
# alike), with the same `minikms bench` requests: AES-256-GCM with a server
# IV and Tag Length 16 (PyKMIP requires it), 32-byte payloads, KMIP 1.4.
# Per case and server: ops/s, p50/p99, errors, the server's CPU per
# operation (utime+stime of the server process from /proc/<pid>/stat over
# warm-up and window, divided by the operations of both), its peak RSS
# during the case (/proc/<pid>/status VmHWM, reset before each case through
# /proc/<pid>/clear_refs) and the 1-minute load average when the case ended.
set -euo pipefail
cd "$(dirname "$0")/.."

write=0
[[ ${1:-} == --write ]] && write=1

cases=${BENCH_CASES:-"encrypt:1 encrypt:16 decrypt:16 get:16 create:16 connect:16"}
duration=${BENCH_DURATION:-10s}
warmup=${BENCH_WARMUP:-2s}
pg=${BENCH_PG:-1}
py=/usr/bin/python3
[[ -x $py ]] || py=python3

if [[ ! -x /usr/bin/pykmip-server ]]; then
	echo "installing python3-pykmip (Debian)" >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pykmip >&2 ||
		{ apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pykmip >&2; }
fi
pykmip_version=$(dpkg-query -W -f '${Version}' python3-pykmip 2>/dev/null || echo unknown)

make -s build
bin=${MINIKMS_BIN:-bin/minikms}
client=bin/minikms

work=$(mktemp -d)
pids=()
pgdir=
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [[ -n $pgdir ]]; then scripts/pg.sh stop "$pgdir" >/dev/null 2>&1 || true; fi
	rm -rf "$work"
}
trap cleanup EXIT
port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_minikms NAME [ENV...]: a dev server on a fresh data directory.
declare -A addr dir pid
start_minikms() {
	local name=$1
	shift
	local d=$work/$name k=127.0.0.1:$(port) h=127.0.0.1:$(port)
	mkdir -p "$d"
	env "$@" "$bin" dev --data-dir "$d" --kmip-addr "$k" --http-addr "$h" >"$d/server.log" 2>&1 &
	local p=$!
	pids+=("$p")
	for _ in $(seq 300); do
		curl -sf "http://$h/readyz" >/dev/null 2>&1 && break
		kill -0 "$p" 2>/dev/null || { cat "$d/server.log" >&2; exit 1; }
		sleep 0.1
	done
	addr[$name]=$k dir[$name]=$d pid[$name]=$p
}

servers=(minikms)
start_minikms minikms -u MINIKMS_DB_URL
pg_version=
if [[ $pg == 1 ]]; then
	pgdir=$(mktemp -d)
	if url=$(scripts/pg.sh start "$pgdir" 2>"$work/pg.err"); then
		pg_version=$(psql -XAtc 'SHOW server_version' "$url" 2>/dev/null | cut -d' ' -f1 || true)
		start_minikms minikms-pg MINIKMS_DB_URL="$url"
		servers+=(minikms-pg)
	else
		echo "PostgreSQL could not be started here; skipping it: $(tail -1 "$work/pg.err")" >&2
		rm -rf "$pgdir"
		pgdir=
	fi
fi

# PyKMIP, with the dev bundle's server certificate and CA.
certs=${dir[minikms]}/certs
pyk=$work/pykmip
mkdir -p "$pyk/policies"
pport=$(port)
cat >"$pyk/server.conf" <<EOF
[server]
hostname=127.0.0.1
port=$pport
certificate_path=$certs/server.crt
key_path=$certs/server.key
ca_path=$certs/ca.crt
auth_suite=TLS1.2
policy_path=$pyk/policies
enable_tls_client_auth=True
logging_level=WARNING
database_path=$pyk/pykmip.db
EOF
$py /usr/bin/pykmip-server -f "$pyk/server.conf" -l "$pyk/server.log" >"$pyk/out" 2>&1 &
p=$!
pids+=("$p")
for _ in $(seq 300); do
	$py -c "import socket,sys; socket.create_connection(('127.0.0.1',$pport),0.2)" 2>/dev/null && break
	kill -0 "$p" 2>/dev/null || { cat "$pyk/out" "$pyk/server.log" >&2; exit 1; }
	sleep 0.1
done
addr[pykmip]=127.0.0.1:$pport dir[pykmip]=${dir[minikms]} pid[pykmip]=$p
servers+=(pykmip)

tck=$(getconf CLK_TCK)
cpu() { awk '{print $14+$15}' "/proc/$1/stat"; }
hwm() { awk '/^VmHWM/{print $2}' "/proc/$1/status"; }
results=$work/results.jsonl
for c in $cases; do
	op=${c%%:*}
	conns=${c##*:}
	for s in "${servers[@]}"; do
		p=${pid[$s]}
		echo 5 >"/proc/$p/clear_refs" 2>/dev/null || true # reset VmHWM
		c0=$(cpu "$p")
		rc=0
		out=$("$client" bench --data-dir "${dir[$s]}" --addr "${addr[$s]}" --server-name 127.0.0.1 --json \
			--op "$op" --size 32 --tag-length 16 --conns "$conns" --duration "$duration" --warmup "$warmup" 2>"$work/bench.err") || rc=$?
		c1=$(cpu "$p")
		load=$(cut -d' ' -f1 /proc/loadavg)
		if [[ $rc != 0 || -z $out ]]; then
			out='{"failed": true}'
			echo "$s $c: $(tr '\n' ' ' <"$work/bench.err")" >&2
		fi
		$py - "$s" "$op" "$conns" "$c0" "$c1" "$tck" "$(hwm "$p")" "$load" "$out" >>"$results" <<'PY'
import json, sys
s, op, conns, c0, c1, tck, hwm, load, out = sys.argv[1:]
r = json.loads(out)
r.update(server=s, op=op, conns=int(conns), hwm_kib=int(hwm), load=float(load))
ops = r.get("ops", 0) + r.get("warmup_ops", 0)
r["server_cpu_us"] = (float(c1) - float(c0)) / float(tck) * 1e6 / ops if ops else None
print(json.dumps(r))
PY
		echo "done: $s $c (load $load)" >&2
	done
done

table=$work/table.md
$py - "$results" "$duration" "$warmup" "$pykmip_version" "$pg_version" "$(git rev-parse --short HEAD)" >"$table" <<'PY'
import json, sys, datetime
path, duration, warmup, pyv, pgv, commit = sys.argv[1:]
rows = [json.loads(l) for l in open(path)]
names = {"minikms": "miniKMS (SQLite)", "minikms-pg": "miniKMS (PostgreSQL %s)" % pgv, "pykmip": "PyKMIP %s" % pyv}
by = {}
for r in rows:
    by.setdefault((r["op"], r["conns"]), {})[r["server"]] = r
print("(%s, commit %s plus the working tree; %s per case after %s of warm-up; "
      "load = 1-minute load average at the end of the case.)" % (datetime.date.today(), commit, duration, warmup))
print()
print("| case | server | ops/s | p50 ms | p99 ms | errors | server CPU µs/op | peak RSS MiB | load | × PyKMIP ops/s | PyKMIP CPU/op ÷ this |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for (op, conns), srv in by.items():
    py = srv.get("pykmip", {})
    for s in ("minikms", "minikms-pg", "pykmip"):
        r = srv.get(s)
        if r is None:
            continue
        case = "%s ×%d" % (op, conns)
        if r.get("failed"):
            print("| %s | %s | failed | | | | | %.0f | %.1f | | |" % (case, names[s], r["hwm_kib"] / 1024, r["load"]))
            continue
        l = r["latency_ms"]
        errors = sum(r["errors"].values())
        cpu = r["server_cpu_us"]
        ratio = cpuratio = ""
        if s != "pykmip" and py and not py.get("failed") and py["ops_per_s"] > 0:
            ratio = "%.1f×" % (r["ops_per_s"] / py["ops_per_s"])
            if cpu and py.get("server_cpu_us"):
                cpuratio = "%.1f×" % (py["server_cpu_us"] / cpu)
        print("| %s | %s | %s | %.2f | %.2f | %d | %s | %.0f | %.1f | %s | %s |" % (
            case, names[s], format(round(r["ops_per_s"]), ","), l["p50"], l["p99"], errors,
            "%.0f" % cpu if cpu else "", r["hwm_kib"] / 1024, r["load"], ratio, cpuratio))
PY
cat "$table"

if [[ $write == 1 ]]; then
	$py - BENCHMARKS.md "$table" <<'PY'
import sys
doc, table = sys.argv[1:]
text = open(doc).read()
begin, end = "<!-- bench-compare:begin -->", "<!-- bench-compare:end -->"
new = begin + "\n" + open(table).read() + end
if begin in text and end in text:
    a = text.index(begin)
    b = text.index(end) + len(end)
    text = text[:a] + new + text[b:]
else:
    text = text.rstrip("\n") + "\n\n## miniKMS next to PyKMIP\n\n    make bench-compare\n\n" + new + "\n"
open(doc, "w").write(text)
PY
	echo "BENCHMARKS.md updated" >&2
fi
