#!/usr/bin/env bash
# Two computers on one machine (needs root): the simulated camera and microphone
# in network namespace <prefix>_cam, the executor (with its task nodes) and every
# rtmdl command in <prefix>_exec, joined by a veth pair (10.77.0.1 <-> .2) that
# delays each packet by --delay-ms +- --jitter-ms (tc netem) both ways. DDS runs
# over UDP only (config/fastdds_udp.xml) with discovery on the subnet.
#
#   sudo bash tools/two_namespaces.sh up [--delay-ms 1] [--jitter-ms 0.2] [--prefix rtmdl]
#   sudo bash tools/two_namespaces.sh run [--prefix rtmdl] -- rtmdl calibrate ...   # in <prefix>_exec
#   sudo bash tools/two_namespaces.sh down [--prefix rtmdl]
#
# `run` sets RTMDL_SENSOR_NETNS so that rtmdl bringup / calibrate start the
# simulated sensors across the link (rtmdl_ros/bringup.py). docs/usage.md: two computers.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
action="${1:-}"; shift || true
prefix=rtmdl delay=1 jitter=0.2
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --delay-ms) delay="$2"; shift 2 ;;
    --jitter-ms) jitter="$2"; shift 2 ;;
    --) shift; break ;;
    *) echo "two_namespaces.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
cam="${prefix}_cam" exe="${prefix}_exec"
case "$action" in
  up)
    ip netns add "$cam"; ip netns add "$exe"
    ip link add "${prefix}_vc" type veth peer name "${prefix}_ve"
    ip link set "${prefix}_vc" netns "$cam"; ip link set "${prefix}_ve" netns "$exe"
    for pair in "$cam ${prefix}_vc 10.77.0.1" "$exe ${prefix}_ve 10.77.0.2"; do
      set -- $pair
      ip -n "$1" link set lo up
      ip -n "$1" addr add "$3/24" dev "$2"
      ip -n "$1" link set "$2" up
      ip -n "$1" route add 224.0.0.0/4 dev "$2"          # DDS discovery is multicast
      if ! ip netns exec "$1" tc qdisc add dev "$2" root netem delay "${delay}ms" "${jitter}ms" 2>/dev/null; then
        delay=0 jitter=0                                 # a kernel without sch_netem
        echo "[two_namespaces] tc netem is not available in this kernel (module sch_netem): no added delay" >&2
      fi
    done
    echo "[two_namespaces] $cam (10.77.0.1) <-> $exe (10.77.0.2), ${delay} ms +- ${jitter} ms added each way" ;;
  run)
    profile="$ROOT/rtmdl_ros/config/fastdds_udp.xml"
    # FASTRTPS_* only where tools/env.sh set it (Humble, Iron): Jazzy warns about it.
    old_var=(); [ -n "${FASTRTPS_DEFAULT_PROFILES_FILE:-}" ] && old_var=(FASTRTPS_DEFAULT_PROFILES_FILE="$profile")
    exec ip netns exec "$exe" env RTMDL_SENSOR_NETNS="$cam" ROS_AUTOMATIC_DISCOVERY_RANGE=SUBNET ROS_LOCALHOST_ONLY=0 \
      FASTDDS_DEFAULT_PROFILES_FILE="$profile" "${old_var[@]}" "$@" ;;
  down)
    ip netns del "$cam" 2>/dev/null || true; ip netns del "$exe" 2>/dev/null || true ;;
  *) echo "usage: two_namespaces.sh up|run|down [options] [-- command]" >&2; exit 2 ;;
esac
