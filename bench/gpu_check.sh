#!/usr/bin/env bash
# Validate a CUDA machine end to end (issue 13), and write docs/gpu.md from what it measured.
#
#   make gpu-bundle                 # on a machine with the project's .venv: pytest, tqdm,
#                                   # threadpoolctl and the zoo's ONNX exports into build/gpu_bundle
#   bash bench/gpu_check.sh         # on the GPU machine (make gpu-check does the same)
#
# Needs only a python with torch (CUDA), numpy, opencv and pyyaml: no ROS, no
# network, no install. It does not touch the machine's torch. Steps, each writing
# its figures under $GPU_CHECK_OUT (default results/gpu), so a later call can
# run the rest (GPU_CHECK_STEPS="evaluate report"):
#   env       machine, driver, torch and CUDA versions
#   tests     the CUDA tests (rtmdl_ros/test/test_cuda.py) and the engine's own tests
#   profile   every vision zoo variant on torch/cuda (and onnxruntime/cuda where it
#             has the CUDA provider), packing of every variant against the heaviest
#   packing   inferences/s on 1..4 lanes vs one lane (bench/bench_gpu_packing.py)
#   overhead  scheduler overhead on CUDA lanes with real segments (bench_runtime_overhead.py)
#   evaluate  rtmdl vs dm-nmc, dm-mc, um-nmc on the core runtime with CUDA lanes, at
#             the loads stated below, p99 vs analysed bound per task
#   report    docs/gpu.md (between its gpu_check markers) and docs/gpu/*.png
# GPU_CHECK_DEVICE=cpu rehearses every step on a machine without a GPU (CUDA tests skip).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PYTHON:-python3}"
OUT="${GPU_CHECK_OUT:-results/gpu}"
DEVICE="${GPU_CHECK_DEVICE:-cuda}"
STEPS="${GPU_CHECK_STEPS:-env tests profile packing overhead evaluate report}"
# The load grid, stated before the run: extra 30 fps cameras running the
# traffic-light detector, and background CPU work in cores.
CAMERAS="${GPU_CHECK_CAMERAS:-0 16 32}"
LOADS="${GPU_CHECK_LOADS:-0 8}"
SECONDS_PER_RUN="${GPU_CHECK_RUN_S:-10}"
SAMPLES="${GPU_CHECK_SAMPLES:-100}"
mkdir -p "$OUT"
case " $STEPS " in *" env "*) : > "$OUT/steps.txt";; esac

export PYTHONPATH="$ROOT/rtmdl_ros${PYTHONPATH:+:$PYTHONPATH}"
if [ -d build/gpu_bundle ]; then
  export PYTHONPATH="$PYTHONPATH:$ROOT/build/gpu_bundle/python" RTMDL_CACHE="$ROOT/build/gpu_bundle/cache"
fi
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1   # the scheduler decides what runs in parallel
rtmdl() { "$PY" -m rtmdl_ros.cli "$@"; }
log() { printf '[gpu_check %s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
has() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
# step NAME CMD...: output to $OUT/NAME.txt as well; a failing step is recorded
# in $OUT/steps.txt and the others still run (the report says what failed).
FAILED=0
step() {
  local name=$1 t0=$SECONDS rc=0; shift
  "$@" 2>&1 | tee "$OUT/$name.txt" || rc=$?
  echo "$name rc=$rc seconds=$((SECONDS - t0))" >> "$OUT/steps.txt"
  [ "$rc" -eq 0 ] || { log "step $name FAILED (rc $rc, $OUT/$name.txt)"; FAILED=1; }
}

"$PY" - "$DEVICE" <<'PY'
import importlib.util, sys
missing = [m for m in ('torch', 'numpy', 'cv2', 'yaml', 'pytest', 'tqdm', 'threadpoolctl') if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f'gpu_check: this python lacks {", ".join(missing)}; run `make gpu-bundle` where the project is set up '
             'and bring build/gpu_bundle along (or pip install them)')
import torch
if sys.argv[1] == 'cuda' and not torch.cuda.is_available():
    sys.exit('gpu_check: torch sees no CUDA device (GPU_CHECK_DEVICE=cpu rehearses the steps without one)')
PY

if has env; then
  log "machine"
  "$PY" - "$OUT/machine.json" "$DEVICE" <<'PY'
import json, os, platform, subprocess, sys
import torch
info = {'host': platform.node(), 'cpus': os.cpu_count(), 'python': platform.python_version(), 'torch': torch.__version__,
        'cuda': torch.version.cuda, 'device': sys.argv[2]}
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    info.update(gpu=p.name, gpu_memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count,
                cudnn=torch.backends.cudnn.version())
    try:
        info['driver'] = subprocess.run(['nvidia-smi', '--query-gpu=driver_version', '--format=csv,noheader'],
                                        capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
try:
    import onnxruntime
    info['onnxruntime'] = onnxruntime.__version__
    info['onnxruntime_providers'] = onnxruntime.get_available_providers()
except ImportError:
    pass
json.dump(info, open(sys.argv[1], 'w'), indent=1)
print(info)
PY
fi

if has tests; then
  log "tests: CUDA tests and the engine's tests (no ROS needed)"
  # The ROS tests need rclpy and are not run here; test_cuda.py is the CUDA half.
  step tests "$PY" -m pytest -q -p no:cacheprovider -rs rtmdl_ros/test/test_cuda.py rtmdl_ros/test/test_backends.py \
      rtmdl_ros/test/test_packing.py rtmdl_ros/test/test_analysis.py rtmdl_ros/test/test_runtime.py \
      rtmdl_ros/test/test_scheduling.py rtmdl_ros/test/test_analysis_vs_simulation.py
fi

if has profile; then
  log "profile: torch/$DEVICE, packing of every variant"
  step profile_torch rtmdl profile --config rtmdl_ros/config/gpu_check.yaml --backend torch --device "$DEVICE" \
      --samples "$SAMPLES" --warmup 20 --lanes 4 --packing each --quiet --out "$OUT/taskset_torch.yaml"
  if "$PY" -c "import onnxruntime, sys; sys.exit('CUDAExecutionProvider' not in onnxruntime.get_available_providers())" 2>/dev/null \
     || [ "$DEVICE" = cpu ]; then
    log "profile: onnxruntime/$DEVICE"
    step profile_onnxruntime rtmdl profile --config rtmdl_ros/config/gpu_check.yaml --backend onnxruntime --device "$DEVICE" \
        --samples "$SAMPLES" --warmup 20 --lanes 4 --packing each --quiet --out "$OUT/taskset_onnxruntime.yaml"
  else
    log "profile: onnxruntime has no CUDA provider here; only torch is measured"
  fi
fi

if has packing; then
  log "packing throughput 1..4 lanes vs serialised"
  step packing "$PY" bench/bench_gpu_packing.py --backend torch --device "$DEVICE" --lanes 4 --seconds 0.75 \
      --variants all --json "$OUT/packing.json"
fi

if has overhead; then
  log "scheduler overhead on CUDA lanes"
  step overhead "$PY" bench/bench_runtime_overhead.py --backend torch --device "$DEVICE" --lanes 2 --jobs 2000 \
      --rate-hz 100 --json "$OUT/overhead.json"
fi

if has evaluate; then
  log "evaluation grid: cameras {$CAMERAS} x background cores {$LOADS}, ${SECONDS_PER_RUN} s per policy"
  # shellcheck disable=SC2086
  step evaluate rtmdl evaluate --config rtmdl_ros/config/gpu_check.yaml --backend torch --device "$DEVICE" \
      --cameras $CAMERAS --loads $LOADS --duration-s "$SECONDS_PER_RUN" --profile-samples 30 --time-limit-s 5 \
      --quiet --out "$OUT/evaluation"
fi

if has report; then
  log "report: docs/gpu.md"
  step report "$PY" bench/gpu_report.py "$OUT" --doc docs/gpu.md --plots docs/gpu
  if [ "$DEVICE" != cpu ]; then          # the recorded GPU profile joins test_packing.py's inputs
    cp "$OUT"/profiles/*-torch-"$DEVICE".yaml rtmdl_ros/test/data/profiles/ 2>/dev/null || true
  fi
fi
log "done: $OUT (steps: $OUT/steps.txt)"
exit "$FAILED"
