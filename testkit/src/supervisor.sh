# Supervises one throwaway PostgreSQL cluster: sh DIR/supervisor.sh DIR BINDIR
#
# Stdin is a pipe whose write end only the test process holds. Each line
# `start PORT` (re)starts the server on PORT; end of file, which comes when the
# test process drops the PgServer or exits in any way (even SIGKILL), stops the
# server and removes DIR. Stdout reports progress, one event per line:
# `initialized`, `initdb-failed`, `started PID`, `exited STATUS`.

dir=$1
bindir=$2
exec 2>>"$dir/server.log"
# The test process may be gone when we report an event: do not die of it.
trap '' PIPE
watcher=

if ! "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
    </dev/null >"$dir/initdb.log" 2>&1; then
    echo initdb-failed
    while read -r _; do :; done
    rm -rf "$dir"
    exit 1
fi
# In postgresql.conf rather than on the command line, so that a test can change
# them with ALTER SYSTEM and a restart (change capture's prerequisite errors).
printf "wal_level = logical\nmax_replication_slots = 100\n" >>"$dir/data/postgresql.conf"
echo initialized

# Runs postgres under a watcher subshell that reports its pid and exit status
# and, on SIGTERM, shuts it down (SIGINT: fast shutdown) and waits for it.
start() {
    (
        pid=
        stopping=
        trap 'stopping=1; [ -z "$pid" ] || kill -INT "$pid" 2>/dev/null' TERM
        "$bindir/postgres" -D "$dir/data" -p "$1" -k "$dir" \
            -c listen_addresses=127.0.0.1 \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
            -c max_connections=200 -c shared_buffers=128MB \
            </dev/null >>"$dir/server.log" 2>&1 &
        pid=$!
        [ -z "$stopping" ] || kill -INT "$pid" 2>/dev/null
        echo "started $pid"
        status=0
        while kill -0 "$pid" 2>/dev/null; do
            wait "$pid"
            status=$?
        done
        echo "exited $status"
    ) &
    watcher=$!
}

stop() {
    if [ -n "$watcher" ]; then
        kill -TERM "$watcher" 2>/dev/null
        wait "$watcher"
        watcher=
    fi
}

while read -r command argument; do
    case $command in
        start) stop; start "$argument" ;;
    esac
done
stop
rm -rf "$dir"
