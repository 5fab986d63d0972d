#!/usr/bin/env bash
# Writes locks/<distro>.txt: the exact versions (with sha256 hashes) of everything
# `make setup` installs on the wheels path (no /opt/ros), resolved from
# requirements.txt + requirements-ros-<distro>.txt by pip-tools' pip-compile, for
# RTMDL_DISTRO (jazzy or kilted; both when unset). Run it (`make lock`) after
# changing any of those files, then commit the locks.
#
# torch is resolved with the rest, so its dependencies are pinned and hashed,
# but its own line is dropped: which build to take (the CPU wheel, CUDA, a
# Jetson's) is the machine's choice, made by RTMDL_TORCH_SPEC in tools/setup.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
TOOLS="$ROOT/.lock-tools"                 # pip-tools, kept apart from .venv
TORCH_SPEC="${RTMDL_TORCH_SPEC:-torch==2.13.0}"
DISTROS="${RTMDL_DISTRO:-jazzy kilted}"
cd "$ROOT"
[ -x "$TOOLS/bin/pip-compile" ] || { "$PY" -m venv "$TOOLS" && "$TOOLS/bin/pip" install -q pip-tools; }
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
echo "$TORCH_SPEC" > "$tmp/torch.in"
mkdir -p locks
for distro in $DISTROS; do
  rm -f "$tmp/lock.txt"                 # no pins carried over from the other distro
  echo "[lock] $distro: resolving requirements.txt + requirements-ros-$distro.txt + $TORCH_SPEC (a few minutes: every file's hash)"
  "$TOOLS/bin/pip-compile" -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
    --no-emit-find-links --no-header --output-file "$tmp/lock.txt" requirements.txt "requirements-ros-$distro.txt" "$tmp/torch.in" \
    2> >(grep -v "^WARNING: Location" >&2)
  {
    echo "# Exact versions that tools/setup.sh installs on the wheels path (RTMDL_DEPS=locked, the default),"
    echo "# for CPython $("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")') on $(uname -m) Linux. Made by \`make lock\` (tools/lock.sh) on $(date -u +%Y-%m-%d)"
    echo "# from requirements.txt + requirements-ros-$distro.txt; torch itself comes from RTMDL_TORCH_SPEC."
    # Drop torch's entry (its line, hashes and 'via' comments) up to the next package.
    awk '/^torch==/ {skip=1; next} skip && /^[^ #]/ {skip=0} !skip' "$tmp/lock.txt" | sed "s#$tmp/torch.in#RTMDL_TORCH_SPEC#"
  } > "$tmp/out.txt"
  mv "$tmp/out.txt" "locks/$distro.txt"
  echo "[lock] wrote locks/$distro.txt ($(grep -c '^[a-z]' "locks/$distro.txt") packages)"
done
