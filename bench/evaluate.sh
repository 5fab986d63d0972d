#!/usr/bin/env bash
# The long evaluation (issue 5): all four policies at eight load levels
# (background CPU work 0 and 1 core x 0, 4, 6 and 8 extra 30 fps cameras
# running the traffic-light detector), 60 s per run, profiled under each
# background load. About 35 minutes on 2 cores; keep the machine otherwise idle.
# Results: results/evaluation/{table.md,results.json,*.png}; figures in docs/evaluation.md.
set -euo pipefail
rtmdl evaluate --out results/evaluation --loads 0 1 --cameras 0 4 6 8 --duration-s 60 --profile-samples 40 "$@"
