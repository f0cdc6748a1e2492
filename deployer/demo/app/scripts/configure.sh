#!/bin/sh
# Render the release's config for this host.
set -eu
cat > "$DEPLOY_RELEASE_DIR/app.conf" <<CONF
app=$DEPLOY_APP
version=$DEPLOY_VERSION
environment=$DEPLOY_ENVIRONMENT
host=$DEPLOY_HOST
datacenter=$DEPLOY_DATACENTER
CONF
echo "configured $DEPLOY_VERSION for $DEPLOY_HOST"
