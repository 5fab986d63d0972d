# Source this after tools/setup.sh:  source tools/env.sh
# It activates .venv (on top of /opt/ros when setup found one), overlays the
# built workspace and keeps DDS discovery on this machine.
_rtmdl_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if grep -q 'include-system-site-packages = true' "$_rtmdl_root/.venv/pyvenv.cfg" 2>/dev/null; then
  for _d in "/opt/ros/${ROS_DISTRO:-}" /opt/ros/*; do
    # shellcheck disable=SC1091
    [ -f "$_d/setup.bash" ] && { source "$_d/setup.bash"; break; }
  done
fi
# shellcheck disable=SC1091
source "$_rtmdl_root/.venv/bin/activate"
case ":${AMENT_PREFIX_PATH:-}:" in *":$VIRTUAL_ENV:"*) ;; *)
  export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}";; esac
# shellcheck disable=SC1091
source "$_rtmdl_root/install/local_setup.bash"
# Console scripts live where `ros2 run rtmdl_ros ...` finds them; put them on
# PATH too so `rtmdl` works without ros2cli.
case ":$PATH:" in *":$_rtmdl_root/install/rtmdl_ros/lib/rtmdl_ros:"*) ;; *)
  export PATH="$_rtmdl_root/install/rtmdl_ros/lib/rtmdl_ros:$PATH";; esac
# Generated data splits pass through BLAS (np.convolve, scipy.signal.butter), and the last
# bits of those follow the kernel OpenBLAS picks for the CPU: on an AVX-512 AMD EPYC the
# audio test split differed from the one the zoo's metrics were measured on, and with
# Haswell's kernels (AVX2, every x86-64 CI box has them) it is the same. Pin it so a split
# is one split on every x86-64 machine (data/cache.py keys splits by it).
if [ "$(uname -m)" = x86_64 ]; then
  export OPENBLAS_CORETYPE="${OPENBLAS_CORETYPE:-Haswell}"
fi
if [ "${ROS_DISTRO:-}" = humble ]; then
  export ROS_LOCALHOST_ONLY="${ROS_LOCALHOST_ONLY:-1}"
else
  export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
fi
# Fast DDS: shared-memory segments that hold a camera frame (see the XML). Fast DDS 2
# (libfastrtps: Humble, Jazzy) reads only FASTRTPS_*, Fast DDS 3 (libfastdds: Kilted on)
# FASTDDS_* (FASTRTPS_* with a warning): pick by the library this environment loads.
if [ -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}${FASTRTPS_DEFAULT_PROFILES_FILE:-}" ]; then
  _xml="$_rtmdl_root/rtmdl_ros/config/fastdds_large_frames.xml"
  if compgen -G "$VIRTUAL_ENV/lib/libfastrtps.so.2*" >/dev/null \
     || compgen -G "/opt/ros/${ROS_DISTRO:-none}/lib/libfastrtps.so.2*" >/dev/null; then
    export FASTRTPS_DEFAULT_PROFILES_FILE="$_xml"
  else
    export FASTDDS_DEFAULT_PROFILES_FILE="$_xml"
  fi
fi
unset _rtmdl_root _d _xml
