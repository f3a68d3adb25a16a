#!/usr/bin/env bash
# Stop a cluster started by scripts/start-postgres.sh; nothing to do when it is not running.
# Usage: scripts/stop-postgres.sh [DATA_DIR]
set -euo pipefail
data=${1:-/tmp/antirelou-pg}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if runuser -u postgres -- "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
fi
