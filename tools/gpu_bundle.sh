#!/usr/bin/env bash
# What bench/gpu_check.sh needs beyond a GPU machine's own python (torch, numpy,
# opencv, pyyaml), made here where the project is set up, into build/gpu_bundle:
#   python/  pure-Python packages: pytest (+ pluggy, iniconfig, packaging, pygments), tqdm, threadpoolctl
#   cache/   the zoo's ONNX exports and manifests (exporting needs the onnx package)
# A few MB: it travels with the tree to a machine that has no network.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUNDLE="$ROOT/build/gpu_bundle"
cd "$ROOT"
# shellcheck disable=SC1091
set +u; source tools/env.sh; set -u
rm -rf "$BUNDLE" && mkdir -p "$BUNDLE/python" "$BUNDLE/cache"
pip install -q --disable-pip-version-check --no-deps --target "$BUNDLE/python" \
  pytest pluggy iniconfig packaging pygments tqdm threadpoolctl 2>&1 | { grep -v '^WARNING: Location' || true; }
RTMDL_CACHE="$BUNDLE/cache" rtmdl export all --quiet
du -sh "$BUNDLE"
