#!/usr/bin/env bash
# A private, throwaway PostgreSQL server for the tests of store/postgres.
#
#   scripts/pg.sh start DIR   initdb a cluster into DIR, start it on a free
#                             port of 127.0.0.1 and print its URL:
#                             postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
#   scripts/pg.sh stop DIR    stop that server and remove DIR
#
# Trust authentication, on 127.0.0.1 and the Unix socket in DIR only: a
# test server, never a deployment. fsync and synchronous_commit stay on, so
# the tests see the durability production has. PostgreSQL refuses to run
# as root: as root the server runs as the `postgres` user (created if
# missing); the PostgreSQL binaries are installed (Debian package
# `postgresql`) if missing. Set PGBIN to use other binaries.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop DIR"; }

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
[ -n "$dir" ] || usage
marker=.minikms-pg

# find_pgbin prints the bin directory of the newest installed PostgreSQL.
find_pgbin() {
  if [ -n "${PGBIN:-}" ]; then
    [ -x "$PGBIN/initdb" ] || die "PGBIN=$PGBIN has no initdb"
    echo "$PGBIN"
    return
  fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
    echo "$d"
  fi
}

install_postgres() {
  [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed (run as root, or: sudo apt-get install postgresql)"
  echo "pg.sh: installing the Debian package postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends postgresql >&2
}

# as_pg runs a command as the server's user: postgres when we are root,
# else ourselves.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  local pgbin
  pgbin=$(find_pgbin)
  if [ -z "$pgbin" ]; then
    install_postgres
    pgbin=$(find_pgbin)
    [ -n "$pgbin" ] || die "no PostgreSQL binaries under /usr/lib/postgresql after installing"
  fi
  if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
  fi

  if [ -e "$dir" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
    die "$dir exists and is not empty"
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd -P)
  touch "$dir/$marker"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$dir"
    chmod 0700 "$dir"
  fi
  as_pg test -w "$dir" || die "$dir is not writable by the postgres user (is a parent directory private?)"
  # The socket path must fit in sun_path (107 bytes).
  [ ${#dir} -le 80 ] || die "$dir is too long a path for the server's Unix socket"

  local data=$dir/data
  as_pg "$pgbin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  as_pg tee "$data/pg_hba.conf" >/dev/null <<EOF
# scripts/pg.sh: a test server; trust on the socket and 127.0.0.1 only.
local all all               trust
host  all all 127.0.0.1/32  trust
EOF
  as_pg tee -a "$data/postgresql.conf" >/dev/null <<EOF

# scripts/pg.sh
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 400
EOF

  # A random free port; another process may take it between the check and
  # the bind, so retry a few times.
  local port attempt
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 40000))
    port_in_use "$port" && continue
    if as_pg "$pgbin/pg_ctl" -D "$data" -l "$dir/server.log" -o "-p $port" -w -t 60 start >/dev/null 2>&1; then
      if as_pg "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 30; then
        local url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
        echo "$url" | as_pg tee "$dir/url" >/dev/null
        echo "$url"
        return 0
      fi
      as_pg "$pgbin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    echo "pg.sh: start on port $port failed (attempt $attempt), retrying" >&2
  done
  tail -n 20 "$dir/server.log" >&2 || true
  die "could not start PostgreSQL in $dir"
}

stop() {
  [ -d "$dir" ] || return 0
  [ -e "$dir/$marker" ] || die "$dir was not made by $0 start; not removing it"
  if [ -f "$dir/data/postmaster.pid" ]; then
    local pgbin
    pgbin=$(find_pgbin)
    [ -n "$pgbin" ] || die "no PostgreSQL binaries to stop the server in $dir"
    as_pg "$pgbin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null ||
      as_pg "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null ||
      die "could not stop the server in $dir"
  fi
  rm -rf "$dir"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
