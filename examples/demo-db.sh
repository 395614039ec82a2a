#!/usr/bin/env bash
# examples/demo-db.sh: a throwaway PostgreSQL holding the demo's shop database (demo/shop.sql),
# for examples/demo.sh and tests/e2e/84-examples.
#
#   examples/demo-db.sh start DIR PORT   a new cluster in DIR (must not exist; as root, its parent
#                                        must be reachable by the postgres user) on 127.0.0.1:PORT
#   examples/demo-db.sh stop DIR         stops it (DIR is left for the caller to remove)
#
# Needs Debian's postgresql package (`make test` installs it). Logins: postgres over the
# socket in DIR (trust), sql_agent over TCP with the password in demo/shop.sql (scram).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bin" ] || { echo "demo-db: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 1; }

# initdb refuses to run as root: then the cluster belongs to the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "${1:-}" in
start)
  dir=$2 port=$3
  mkdir "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
    || { cat "$dir/postgres.log" >&2; exit 1; }
  as_pg "$bin/createdb" -h "$dir" -p "$port" -U postgres shop
  as_pg "$bin/psql" -q -h "$dir" -p "$port" -U postgres -d shop -v ON_ERROR_STOP=1 \
    -f - <"$here/demo/shop.sql" >/dev/null
  ;;
stop)
  as_pg "$bin/pg_ctl" -D "$2/data" -m immediate -w stop >/dev/null 2>&1 || true
  ;;
*)
  echo "usage: $0 start DIR PORT | stop DIR" >&2
  exit 2
  ;;
esac
