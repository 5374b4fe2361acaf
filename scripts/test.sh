#!/usr/bin/env bash
# The test command: vet; the whole test suite; then the race detector over
# everything but the whole-feed tests (-short), which would take too long
# under it.
# When PostgreSQL's server binaries are installed (Debian's postgresql
# package), a throwaway cluster on 127.0.0.1 serves the PostgreSQL tests
# (VIGIL_TEST_POSTGRES); without them those tests skip with a message.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIGIL_TEST_POSTGRES:-}" ] && ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  if exports=$(scripts/postgres.sh start); then
    eval "$exports"
    trap 'scripts/postgres.sh stop "$VIGIL_PG_DIR" || true' EXIT
  else
    echo "could not start PostgreSQL: its tests will skip" >&2
  fi
fi

go vet ./...
go test -timeout 30m "$@" ./...
go test -race -short -timeout 30m "$@" ./...
