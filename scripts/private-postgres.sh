# Sourced by scripts/test and scripts/bench: starts a throwaway PostgreSQL
# (initdb + pg_ctl) as the postgres user, listening only on a Unix socket
# in WORKDIR (no TCP, unless a port is given: then also on 127.0.0.1, with
# no TLS, for the tests that show cofferd refuses a server it cannot
# verify), with trust authentication. It lives and dies with WORKDIR.
#   start_private_postgres WORKDIR [TCP_PORT]   sets COFFER_TEST_POSTGRES (a libpq conninfo)
#   stop_private_postgres WORKDIR
pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$dir" ] || { echo "PostgreSQL is not installed (scripts/setup installs it)" >&2; return 1; }
  echo "$dir"
}

start_private_postgres() {
  local work="$1" bin listen="''"
  [ -z "${2:-}" ] || listen="'127.0.0.1' -p $2"
  bin="$(pg_bin)"
  mkdir -p "$work/pg" "$work/pgsock"
  chown postgres: "$work/pg" "$work/pgsock"
  chmod 0700 "$work/pg"
  # initdb refuses to run as root: run it, and the server, as postgres.
  setpriv --reuid=postgres --regid=postgres --init-groups \
    "$bin/initdb" -D "$work/pg/data" --auth=trust --username=postgres -E UTF8 --no-sync >"$work/pg/initdb.log" 2>&1 || {
      cat "$work/pg/initdb.log" >&2; return 1; }
  setpriv --reuid=postgres --regid=postgres --init-groups \
    "$bin/pg_ctl" -D "$work/pg/data" -l "$work/pg/server.log" -w -t 60 \
    -o "-c listen_addresses=$listen -k $work/pgsock -c fsync=off -c max_connections=200" start >/dev/null || {
      cat "$work/pg/server.log" >&2; return 1; }
  export COFFER_TEST_POSTGRES="host=$work/pgsock user=postgres dbname=postgres"
}

stop_private_postgres() {
  local work="$1" bin
  bin="$(pg_bin)" || return 0
  [ -d "$work/pg/data" ] || return 0
  setpriv --reuid=postgres --regid=postgres --init-groups "$bin/pg_ctl" -D "$work/pg/data" -m fast -w stop >/dev/null 2>&1 || true
}
