#!/usr/bin/env bash
# The F1/10 demo on this machine, end to end:
#   1. profile every zoo variant here (short run) -> a task set for this machine;
#   2. plan it with RT-mDL and with the dm-nmc baseline; show both analyses;
#   3. run the ROS graph (executor, task nodes, synthetic camera + microphone)
#      in one process under the RT-mDL plan, with a live per-task table.
# Outputs go to results/demo/. DEMO_SECONDS sets the run time (default 30).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/results/demo"
mkdir -p "$OUT"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$((40 + RANDOM % 50))}"
echo "=== 1. profiling the zoo on this machine (onnxruntime, CPU)"
rtmdl profile --config "$ROOT/rtmdl_ros/config/f1tenth.yaml" --out "$OUT/f1tenth_taskset.yaml" --samples 40 --warmup 5
for policy in rtmdl dm-nmc; do
  echo "=== 2. plan: $policy"
  rtmdl optimize "$OUT/f1tenth_taskset.yaml" --policy "$policy" --out "$OUT/plan_$policy.yaml" --time-limit-s 20 \
    2>&1 | sed 's/^/  /' || true
  [ -f "$OUT/plan_$policy.yaml" ] && rtmdl analyze "$OUT/f1tenth_taskset.yaml" --plan "$OUT/plan_$policy.yaml" | sed 's/^/  /'
done
PLAN="$OUT/plan_rtmdl.yaml"
[ -f "$PLAN" ] || { echo "no RT-mDL plan meets the bounds on this machine; running the dm-nmc plan"; PLAN="$OUT/plan_dm-nmc.yaml"; }
echo "=== 3. the ROS graph under $(basename "$PLAN") for ${DEMO_SECONDS:-30} s"
rtmdl bringup f1tenth --plan "$PLAN" --duration-s "${DEMO_SECONDS:-30}"
echo "task set, plans and profiles are in $OUT"
