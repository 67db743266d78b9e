# tests/lib/pg.sh -- a throwaway PostgreSQL 15 for tests. Source it:
#
#   . "$TALLY_SRC/tests/lib/pg.sh"
#   pg_start            # initdb + start; exports PGHOST PGPORT PGUSER
#                       # PGDATABASE TALLY_PG (libpq conninfo)
#   pg_sql "SELECT 1"   # psql -XAtq, stops on the first error
#   pg_restart          # stop + start, same data and port
#   pg_down / pg_up     # stop / start without deleting (outage tests)
#   pg_stop             # stop and delete everything
#
# The server listens on a unix socket inside its temp dir and on 127.0.0.1
# at a free port; fsync is off (tests only). PostgreSQL refuses to run as
# root, so under root the cluster belongs to the user `tallytest`
# (created with useradd when missing) and the server runs as that user.
# Nothing outlives pg_stop; callers should `trap pg_stop EXIT`.

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR=
PG_OWNER=

_pg_as_owner() {
        if [ "$(id -u)" = 0 ]; then
                runuser -u "$PG_OWNER" -- "$@"
        else
                "$@"
        fi
}

_pg_free_port() {
        python3 "$(dirname "${BASH_SOURCE[0]}")/free_port.py"
}

pg_up() {
        _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" \
                -w -t 60 start >/dev/null || {
                echo "pg.sh: postgres did not start; log:" >&2
                tail -n 30 "$PG_DIR/log" >&2
                return 1
        }
}

pg_down() {
        [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
        _pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 60 \
                stop >/dev/null
}

pg_restart() {
        pg_down && pg_up
}

pg_start() {
        local port
        if [ "$(id -u)" = 0 ]; then
                PG_OWNER=tallytest
                id -u "$PG_OWNER" >/dev/null 2>&1 ||
                        useradd --system --no-create-home \
                                --shell /usr/sbin/nologin "$PG_OWNER" ||
                        return 1
        else
                PG_OWNER=$(id -un)
        fi
        PG_DIR=$(mktemp -d /tmp/tally-pg.XXXXXX) || return 1
        chmod 755 "$PG_DIR"
        [ "$(id -u)" = 0 ] && chown "$PG_OWNER" "$PG_DIR"
        _pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust \
                -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || {
                cat "$PG_DIR/initdb.log" >&2
                return 1
        }
        port=$(_pg_free_port) || return 1
        cat >>"$PG_DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
log_min_messages = warning
log_statement = 'none'
EOF
        pg_up || return 1
        export PGHOST=$PG_DIR PGPORT=$port PGUSER=postgres PGDATABASE=tally
        "$PG_BIN/psql" -XAtq -d postgres -c "CREATE DATABASE tally" \
                >/dev/null || return 1
        export TALLY_PG="host=$PG_DIR port=$port user=postgres dbname=tally"
}

pg_sql() {
        "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 -c "$1"
}

pg_stop() {
        [ -n "$PG_DIR" ] || return 0
        pg_down
        rm -rf "$PG_DIR"
        PG_DIR=
}
