#!/usr/bin/env bash
# The project's test command (the README's second command; .ci/run runs exactly this).
# For each supported ROS 2 distro (Kilted, and Jazzy, the LTS) it sets everything up first
# (idempotent, fast when nothing changed), keeps DDS on loopback in a private domain, then runs
# the pytest suite in that distro's venv: everything in the first distro's pass, and in the others
# every test that touches ROS (tests of files that touch no ROS, marked `core` by test/conftest.py,
# cannot depend on the distro and run once; long soak and statistical tests marked `once` run once too,
# which keeps both passes within the 45-minute CI budget). Extra arguments go to pytest, e.g.
# scripts/test.sh -k doctor. WARPD_ROS_DISTROS="kilted" runs one distro only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Never let test traffic leave the machine, and never share a domain with a running ROS graph.
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
if [ -z "${ROS_DOMAIN_ID:-}" ] || [ "${ROS_DOMAIN_ID}" = 0 ]; then
  export ROS_DOMAIN_ID=$(( 10 + RANDOM % 90 ))
fi
unset ROS_STATIC_PEERS

DISTROS="${WARPD_ROS_DISTROS:-kilted jazzy}"
LOGS="$ROOT/build/test-logs"
mkdir -p "$LOGS"
status=0
passed=0 failed=0 skipped=0
first=1
hung=""
for distro in $DISTROS; do
  export WARPD_ROS_DISTRO="$distro"
  case "$distro" in kilted) venv="$ROOT/.venv" ;; jazzy) venv="$ROOT/.venv-jazzy" ;;
    *) echo "[test] unknown distro $distro (kilted, jazzy)" >&2; exit 2 ;; esac
  WARPD_VENV="$venv" WARPD_QUIET=1 bash scripts/setup.sh
  echo "[test] ROS 2 $distro: ROS_DOMAIN_ID=$ROS_DOMAIN_ID ROS_AUTOMATIC_DISCOVERY_RANGE=$ROS_AUTOMATIC_DISCOVERY_RANGE"
  select=()
  # the user's own -m, in "$@", comes later and wins
  [ "$first" = 1 ] || select=(-m "not core and not once")
  first=0
  for attempt in 1 2; do
    set +e
    WARPD_VENV="$venv" "$venv/bin/python" -m pytest test "${select[@]}" "$@" 2>&1 | tee "$LOGS/pytest-$distro.log"
    rc=${PIPESTATUS[0]}  # pytest's status, not tee's
    set -e
    # pytest-timeout ended the pass because a test hung (its stacks are in the log, between the
    # "Timeout" rulers): keep that log and run the pass once more, saying so in the totals
    if [ "$rc" != 0 ] && [ "$attempt" = 1 ] && grep -qE '^\++ Timeout \++$' "$LOGS/pytest-$distro.log"; then
      mv "$LOGS/pytest-$distro.log" "$LOGS/pytest-$distro.hung.log"
      hung="$hung $distro"
      echo "[test] ROS 2 $distro: a test hung and pytest-timeout ended the pass (stacks above, kept in" \
           "$LOGS/pytest-$distro.hung.log); running the $distro pass once more"
      continue
    fi
    break
  done
  [ "$rc" = 0 ] || [ "$rc" = 5 ] || status=1  # 5: no test selected (e.g. -k matched nothing)
  summary="$(grep -E '^=+ .*(passed|failed|error|skipped|deselected).* in [0-9.]+s' "$LOGS/pytest-$distro.log" | tail -n 1)"
  for kind in passed failed skipped; do
    n="$(echo "$summary" | grep -oE "[0-9]+ $kind" | grep -oE '^[0-9]+' || echo 0)"
    eval "$kind=\$(( $kind + ${n:-0} ))"
  done
  errors="$(echo "$summary" | grep -oE '[0-9]+ errors?' | grep -oE '^[0-9]+' || echo 0)"
  failed=$(( failed + ${errors:-0} ))
  echo "[test] ROS 2 $distro: ${summary:-no pytest summary} (exit $rc)"
done
echo "[test] distros: $DISTROS"
echo "total: $passed passed, $failed failed, $skipped skipped${hung:+ (run again after a hung test:$hung)}"
exit $status
