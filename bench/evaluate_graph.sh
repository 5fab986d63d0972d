#!/usr/bin/env bash
# The policy x load grid through the ROS graph users run (issue 11), beside the
# core runtime on the same levels: background CPU work 0 and 1 core x 0, 2 and 4
# extra 30 fps cameras (each its own camera process, task node and task running
# the traffic-light detector), four policies, 30 s per run, profiled under each
# background load and calibrated on the graph per level, with up to 3 rounds
# under the plan (RT-mDL runs the plan they settle on, as make demo). About 55
# minutes on 2 cores (the graph half 45); keep the machine otherwise idle.
# Results: results/evaluation_graph/ (graph) and results/evaluation_core/ (core
# runtime); docs/evaluation.md puts them side by side.
set -euo pipefail
rtmdl evaluate --graph --out results/evaluation_graph --loads 0 1 --cameras 0 2 4 --duration-s 30 \
  --calibrate-s 15 --profile-samples 40 --quiet "$@"
rtmdl evaluate --out results/evaluation_core --loads 0 1 --cameras 0 2 4 --duration-s 30 --profile-samples 40 \
  --quiet "$@"
