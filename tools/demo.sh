#!/usr/bin/env bash
# Plan the example F1/10 task set under RT-mDL and the three baselines, then
# show each plan's analysis bounds and a 30 s simulation side by side.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TASKSET="$ROOT/rtmdl_ros/config/f1tenth_example.yaml"
OUT="$ROOT/results/demo"
mkdir -p "$OUT"
for policy in rtmdl dm-nmc dm-mc um-nmc; do
  echo "=== policy $policy"
  rtmdl optimize "$TASKSET" --policy "$policy" --out "$OUT/plan_$policy.yaml" 2>&1 | sed 's/^/  /'
  rtmdl simulate "$TASKSET" --plan "$OUT/plan_$policy.yaml" --duration-s 30 --seed 1 | sed 's/^/  /'
done
echo "plans written to $OUT (load one with: --ros-args --params-file $OUT/plan_rtmdl.yaml)"
