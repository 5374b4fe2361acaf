#!/usr/bin/env bash
# Throwaway PostgreSQL cluster on 127.0.0.1 for tests, with Debian's binaries
# (/usr/lib/postgresql/<version>/bin; install with apt-get install postgresql).
#
#   eval "$(scripts/postgres.sh start)"      # exports VIGIL_TEST_POSTGRES and VIGIL_PG_DIR
#   go test ./internal/store/...             # tests use $VIGIL_TEST_POSTGRES
#   scripts/postgres.sh stop "$VIGIL_PG_DIR" # stops the server and removes the directory
#
# start [DIR] initialises a cluster in DIR (default: a new temporary
# directory), starts it on a free port with trust authentication on loopback
# only, creates the database "vigil" and prints shell export lines. As root,
# the server runs as the "postgres" user (PostgreSQL refuses to run as root).
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
	local d
	for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
		[ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
	done
	die "no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install -y postgresql)"
}

# as runs a command as the cluster's owner.
as() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() {
	local bin dir port log i
	bin=$(bindir)
	dir=${1:-$(mktemp -d "${TMPDIR:-/tmp}/vigil-pg.XXXXXX")}
	mkdir -p "$dir"
	[ -z "$(ls -A "$dir")" ] || die "$dir is not empty"
	if [ "$(id -u)" -eq 0 ]; then
		id postgres >/dev/null 2>&1 || die "running as root and there is no postgres user to run the server"
		chown postgres: "$dir"
	fi
	as "$bin/initdb" -D "$dir/data" -U vigil --auth=trust --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
		die "initdb failed: $(tail -n 5 "$dir/initdb.log")"
	log="$dir/server.log"
	for i in $(seq 1 20); do
		port=$((20000 + RANDOM % 40000))
		port_free "$port" || continue
		if as "$bin/pg_ctl" -D "$dir/data" -l "$log" -w -t 60 \
			-o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200" \
			start >/dev/null 2>&1; then
			as "$bin/createdb" -h 127.0.0.1 -p "$port" -U vigil vigil ||
				{ as "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1; die "createdb failed"; }
			echo "export VIGIL_PG_DIR='$dir'"
			echo "export VIGIL_TEST_POSTGRES='postgres://vigil@127.0.0.1:$port/vigil?sslmode=disable'"
			return
		fi
	done
	die "could not start PostgreSQL on a free port: $(tail -n 5 "$log" 2>/dev/null)"
}

stop() {
	local dir=${1:-${VIGIL_PG_DIR:-}}
	[ -n "$dir" ] || die "stop: name the cluster directory (or set VIGIL_PG_DIR)"
	[ -d "$dir/data" ] || die "stop: $dir holds no cluster"
	as "$(bindir)/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}

case "${1:-}" in
start) shift; start "$@" ;;
stop) shift; stop "$@" ;;
*) die "usage: $0 start [DIR] | stop [DIR]" ;;
esac
