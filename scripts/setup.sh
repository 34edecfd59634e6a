#!/usr/bin/env bash
# Set up warpd_ros for development on a machine without a ROS 2 install:
#   a venv (.venv) with pinned ROS 2 "kilted" wheels (or "jazzy", the LTS, in .venv-jazzy), torch==2.13.0
#   and the ML stack; the messages in msg/ (and interfaces/tf2_msgs, where the distro has no wheel for it)
#   built with rosidl into that venv; warpd_ros + warpd_core installed editable; and, where
#   ../shared/ros-launch-wheels exists, the real launch / launch_testing / ros2 CLI wheels plus colcon,
#   so `colcon build` and `ros2 launch` run against the package.
#
# Idempotent: every step remembers what it did (a stamp in .venv/) and is skipped while its
# inputs are unchanged; the message build is incremental (cmake). Safe to run again at any time.
#
# Environment:
#   PYTHON=python3.11   interpreter to build the venv from (3.10 .. 3.14; ROS wheels exist for those)
#   WARPD_ROS_DISTRO=kilted   kilted (default) or jazzy (the LTS); each distro has its own venv
#   WARPD_VENV=.venv    where the venv lives (default .venv for kilted, .venv-jazzy for jazzy)
#   WARPD_QUIET=1       print only failures and the final line
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
DISTRO="${WARPD_ROS_DISTRO:-kilted}"
case "$DISTRO" in
  kilted) DEFAULT_VENV="$ROOT/.venv"; ROS_REQ=requirements/ros.txt; LOCK=requirements/constraints.txt ;;
  jazzy) DEFAULT_VENV="$ROOT/.venv-jazzy"; ROS_REQ=requirements/ros-jazzy.txt; LOCK=requirements/constraints-jazzy.txt ;;
  *) echo "[setup] error: WARPD_ROS_DISTRO=$DISTRO; supported: kilted, jazzy" >&2; exit 1 ;;
esac
VENV="${WARPD_VENV:-$DEFAULT_VENV}"
case "$VENV" in /*) ;; *) VENV="$ROOT/$VENV" ;; esac
LOGS="$ROOT/build/setup-logs-$DISTRO"
BUILD="$ROOT/build/msgs-$DISTRO"
LAUNCH_WHEELS="$ROOT/../shared/ros-launch-wheels/$DISTRO"
mkdir -p "$LOGS"
# A shell that already runs another ROS-wheels venv carries its bootstrap marker; this venv's
# interpreter must set up its own library path.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE

say() { [ "${WARPD_QUIET:-0}" = 1 ] || echo "[setup] $*"; }
die() { echo "[setup] error: $1" >&2; [ -n "${2:-}" ] && echo "[setup] hint: $2" >&2; exit 1; }

# run LOGNAME CMD... : run a step with its output in a log; on failure show the end of the log.
run() {
  local log="$LOGS/$1.log"; shift
  if ! "$@" >"$log" 2>&1; then
    echo "[setup] error: '$*' failed; last lines of $log:" >&2
    grep -v "Location 'file:" "$log" | tail -n 25 >&2
    exit 1
  fi
}

stamp_of() { cat "$@" | sha256sum | cut -c1-16; }
stamp_ok() { [ -f "$VENV/.warpd-$1.stamp" ] && [ "$(cat "$VENV/.warpd-$1.stamp")" = "$2" ]; }
stamp_set() { echo "$2" >"$VENV/.warpd-$1.stamp"; }

# 1. Interpreter and venv -------------------------------------------------------------------
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.10 python3.13 python3.14 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
  done
fi
[ -n "$PY" ] && command -v "$PY" >/dev/null 2>&1 || die "no python3 found" "install Python 3.11 (apt-get install python3 python3-venv python3-dev)"
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$PYVER" in
  3.10|3.11|3.12|3.13|3.14) ;;
  *) die "$PY is Python $PYVER; the ROS 2 wheels exist for 3.10 to 3.14 only" "set PYTHON=python3.11" ;;
esac
# Building msg/ needs cmake, a C/C++ compiler and the Python headers. On a fresh Debian machine
# they are installed with apt when we are root; otherwise we say what to install.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
"$PY" -c 'import os, sysconfig, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=("python${PYVER}-dev")
"$PY" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=("python${PYVER}-venv")
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing build tools with apt: ${missing[*]}"
    run apt-update apt-get update
    run apt-install env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  else
    die "missing build tools: ${missing[*]} (needed to build msg/)" "sudo apt-get install ${missing[*]}"
  fi
fi

# Offscreen rendering (`warpd demo --video`): MuJoCo renders without a display through OSMesa.
# Optional, as nothing else needs it: installed with apt when we are root, otherwise we say how.
if ! "$PY" -c 'import ctypes.util, sys; sys.exit(ctypes.util.find_library("OSMesa") is None)'; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing libosmesa6 with apt (offscreen MuJoCo rendering for videos)"
    run apt-update-osmesa apt-get update
    run apt-install-osmesa env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libosmesa6
  else
    say "note: libosmesa6 is missing; videos (warpd demo --video) need it: sudo apt-get install libosmesa6"
  fi
fi

if [ ! -x "$VENV/bin/python" ]; then
  say "creating venv $VENV with $PY ($PYVER)"
  "$PY" -m venv "$VENV" >"$LOGS/venv.log" 2>&1 || die "could not create a venv with $PY" "apt-get install python3-venv"
else
  say "venv $VENV exists"
fi
VPY="$VENV/bin/python"
# One distro per venv: the same ros-* wheel names carry both distros' versions.
if [ -f "$VENV/.warpd-distro" ] && [ "$(cat "$VENV/.warpd-distro")" != "$DISTRO" ]; then
  die "$VENV holds ROS 2 $(cat "$VENV/.warpd-distro"), not $DISTRO" \
      "use WARPD_ROS_DISTRO=$(cat "$VENV/.warpd-distro"), or another WARPD_VENV for $DISTRO"
fi
echo "$DISTRO" >"$VENV/.warpd-distro"

# 2. Python dependencies (pinned; torch first so nothing can pull a CUDA build) -----------------
REQ=(requirements/torch.txt "$ROS_REQ" requirements/ml.txt "$LOCK")
deps_stamp="$(stamp_of "${REQ[@]}")"
if stamp_ok deps "$deps_stamp"; then
  say "dependencies up to date"
else
  say "installing pinned dependencies (torch, ROS 2 $DISTRO wheels, ML stack; ~1 min cold)"
  run pip-upgrade "$VPY" -m pip install --upgrade "pip==26.3" "setuptools==79.0.1" wheel
  run pip-torch "$VPY" -m pip install -r requirements/torch.txt
  run pip-deps "$VPY" -m pip install -r "$ROS_REQ" -r requirements/ml.txt -c "$LOCK"
  stamp_set deps "$deps_stamp"
fi

# 2b. ROS 2 launch, launch_testing, the ros2 CLI and colcon (optional) ---------------------------
# launch/launch_ros/launch_testing/ros2cli have no PyPI wheels; unmodified upstream builds sit in
# ../shared/ros-launch-wheels/<distro> beside this checkout where this project is developed. Without
# them everything else works, and the tests that need `ros2 launch` skip, saying why.
if [ -d "$LAUNCH_WHEELS" ]; then
  tooling_stamp="$(stamp_of requirements/tooling.txt <(ls -l "$LAUNCH_WHEELS"))"
  if stamp_ok tooling "$tooling_stamp"; then
    say "launch tooling up to date"
  else
    say "installing ROS 2 launch tooling from $LAUNCH_WHEELS and colcon"
    run pip-launch "$VPY" -m pip install --no-deps "$LAUNCH_WHEELS"/*.whl
    run pip-tooling "$VPY" -m pip install -r requirements/tooling.txt -c "$LOCK"
    stamp_set tooling "$tooling_stamp"
  fi
else
  say "no $LAUNCH_WHEELS: ros2 launch / launch_testing / colcon not installed (their tests skip)"
fi

# 3. Messages: rosidl build into the venv prefix (incremental) ----------------------------------
say "messages: incremental cmake build of msg/*.msg -> warpd_ros.msg"
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  mkdir -p "$BUILD"
  run cmake-configure env CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV" \
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VPY" \
    -DWARPD_INSTALL_PYTHON=OFF -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release
fi
run cmake-build env CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV" cmake --build "$BUILD" -j2
run cmake-install cmake --install "$BUILD"
# rosidl installs an empty warpd_ros/__init__.py and a warpd_ros egg-info into site-packages.
# The editable source package must own warpd_ros (it extends its __path__ to the generated msg/),
# and pip must see a single distribution, so remove both.
SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
rm -rf "$SITE/warpd_ros/__init__.py" "$SITE"/warpd_ros/__pycache__/__init__.* "$SITE"/warpd_ros-*.egg-info

# 3b. tf2_msgs (warpd_sim's /tf) where the distro has no wheel for it: build interfaces/tf2_msgs the
# same way. Once built here it is kept up to date (incremental); a distro that ships it is left alone.
TF2_BUILD="$ROOT/build/tf2_msgs-$DISTRO"
if [ -f "$VENV/.warpd-tf2_msgs-built" ] || ! "$VPY" -c 'import tf2_msgs.msg' >/dev/null 2>&1; then
  say "messages: tf2_msgs (no wheel for ROS 2 $DISTRO) -> interfaces/tf2_msgs built into the venv"
  if [ ! -f "$TF2_BUILD/CMakeCache.txt" ]; then
    mkdir -p "$TF2_BUILD"
    run tf2-configure env CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV" \
      cmake -S "$ROOT/interfaces/tf2_msgs" -B "$TF2_BUILD" -DCMAKE_INSTALL_PREFIX="$VENV" \
      -DPython3_EXECUTABLE="$VPY" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release
  fi
  run tf2-build env CMAKE_PREFIX_PATH="$VENV" AMENT_PREFIX_PATH="$VENV" cmake --build "$TF2_BUILD" -j2
  run tf2-install cmake --install "$TF2_BUILD"
  touch "$VENV/.warpd-tf2_msgs-built"
fi

# 4. Editable install of warpd_ros + warpd_core (the `warpd` command) ---------------------------
pkg_stamp="$(stamp_of setup.py)"
if stamp_ok editable "$pkg_stamp" && [ -x "$VENV/bin/warpd" ]; then
  say "warpd package installed (editable)"
else
  say "installing warpd_ros + warpd_core (editable)"
  # compat mode puts the repo root on sys.path, so the source warpd_ros package (a regular
  # package) wins over the generated namespace portion in site-packages.
  run pip-editable "$VPY" -m pip install --no-deps --no-build-isolation -e "$ROOT" \
    --config-settings editable_mode=compat
  stamp_set editable "$pkg_stamp"
fi

# 5. Check the result --------------------------------------------------------------------------
if [ "${WARPD_QUIET:-0}" = 1 ]; then
  "$VENV/bin/warpd" doctor --quiet || die "warpd doctor found a problem (see above)" "run $VENV/bin/warpd doctor"
else
  "$VENV/bin/warpd" doctor || die "warpd doctor found a problem (see above)" "run $VENV/bin/warpd doctor"
fi
say "ready: $VENV/bin/warpd --help"
