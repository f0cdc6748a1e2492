#!/bin/sh
# Refuse to install on a host with less than 10 MB free where the release goes.
set -eu
free_kb=$(df -Pk "$HOME" | awk 'NR == 2 { print $4 }')
[ "$free_kb" -ge 10240 ] || { echo "only ${free_kb} kB free" >&2; exit 1; }
echo "disk ok: ${free_kb} kB free"
