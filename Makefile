# Front door of rtmdl_ros. Every target does its own set-up (tools/setup.sh),
# which is skipped in seconds when nothing changed. RTMDL_DEPS=latest (e.g.
# `make test RTMDL_DEPS=latest`) sets up the newest allowed versions instead of
# the lock (locks/); `make lock` re-resolves the lock from requirements*.txt.
SHELL := /bin/bash
export RTMDL_DEPS RTMDL_DISTRO
.PHONY: setup lock test demo demo-two-camera bench evaluate evaluate-graph gpu-bundle gpu-check clean

setup:
	@bash tools/setup.sh

lock:
	@bash tools/lock.sh

test: setup
	@source tools/env.sh && cd rtmdl_ros && python -m pytest -q test

demo: setup
	@source tools/env.sh && bash tools/demo.sh

demo-two-camera: setup
	@source tools/env.sh && DEMO_EXAMPLE=two_camera bash tools/demo.sh

bench: setup
	@source tools/env.sh && pip install -q -r bench/requirements.txt && python bench/bench_optimizer.py && python bench/bench_analysis_tightness.py \
	  && python bench/bench_zoo.py && python bench/bench_runtime_overhead.py && python bench/bench_ros_path.py \
	  && python bench/bench_calibration_stability.py

evaluate: setup
	@source tools/env.sh && bash bench/evaluate.sh

evaluate-graph: setup
	@source tools/env.sh && bash bench/evaluate_graph.sh

# The GPU check runs on the GPU machine's own python (no set-up: it must not
# replace a CUDA torch); gpu-bundle, run where the project is set up, makes
# what it needs beyond torch, numpy, opencv and pyyaml (docs/gpu.md).
gpu-bundle: setup
	@bash tools/gpu_bundle.sh

gpu-check:
	@bash bench/gpu_check.sh

clean:
	rm -rf .venv build install log .colcon-build.log .ci-cache
