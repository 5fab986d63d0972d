#!/usr/bin/env bash
# The long evaluation (issue 5): all four policies at four background-load
# levels, 60 s per run, profiled under each load. About 20 minutes on 2 cores.
# Results: results/evaluation/{table.md,results.json,*.png}; figures in docs/evaluation.md.
set -euo pipefail
rtmdl evaluate --out results/evaluation --loads 0 1 1.5 2 --duration-s 60 --profile-samples 40 "$@"
