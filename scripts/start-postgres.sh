#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests and print its URL.
# Usage: scripts/start-postgres.sh [DATA_DIR] [PORT]
set -euo pipefail
data=${1:-/tmp/antirelou-pg}
port=${2:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if ! id postgres >/dev/null 2>&1; then
  echo "PostgreSQL is not installed (apt-get install -y postgresql)" >&2
  exit 1
fi
if [ ! -s "$data/PG_VERSION" ]; then
  rm -rf "$data"
  install -d -o postgres -g postgres "$data"
  runuser -u postgres -- "$bin/initdb" -D "$data" -A trust -U postgres --no-sync >/dev/null
fi
if ! runuser -u postgres -- "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -w -l "$data/server.log" \
    -o "-p $port -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >/dev/null
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
