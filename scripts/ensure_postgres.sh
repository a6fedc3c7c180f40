#!/usr/bin/env bash
# Install Debian's PostgreSQL server when it is missing (as root, or through sudo): the lake's catalog
# and shared state for scripts/cluster.sh, and the lake tests' own server for scripts/test.sh.
set -euo pipefail
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
fi
