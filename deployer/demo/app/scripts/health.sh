#!/bin/sh
# The health check. Version 1.2 of the demo app carries a bug that only shows in dc2
# (it cannot reach a cache there), so pushing 1.2 halts and a rollback is needed.
set -eu
state="$HOME/apps/demo/state/running"
[ -f "$state" ] || { echo "demo is not running" >&2; exit 1; }
if [ "$DEPLOY_VERSION" = "1.2" ] && [ "$DEPLOY_DATACENTER" = "dc2" ]; then
    echo "health check failed: demo 1.2 cannot reach its cache in dc2" >&2
    exit 1
fi
echo "healthy: demo $(cat "$state") on $DEPLOY_HOST"
