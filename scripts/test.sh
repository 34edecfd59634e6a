#!/usr/bin/env bash
# The project's test command (the README's second command; .ci/run runs exactly this).
# Sets everything up first (idempotent, fast when nothing changed), keeps DDS on loopback in a
# private domain, then runs pytest. Extra arguments go to pytest, e.g. scripts/test.sh -k doctor.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Never let test traffic leave the machine, and never share a domain with a running ROS graph.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
if [ -z "${ROS_DOMAIN_ID:-}" ] || [ "${ROS_DOMAIN_ID}" = 0 ]; then
  export ROS_DOMAIN_ID=$(( 10 + RANDOM % 90 ))
fi
unset ROS_STATIC_PEERS

WARPD_QUIET=1 bash scripts/setup.sh
echo "[test] ROS_DOMAIN_ID=$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE"
exec "${WARPD_VENV:-$ROOT/.venv}/bin/python" -m pytest test "$@"
