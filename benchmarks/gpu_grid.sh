#!/usr/bin/env bash
# The comparison grid (benchmarks/compare_grid.py) on a lent GPU machine, within a time
# limit, its rows and logs packed into $OUT/grid.tar.gz every 30 s and at the end, so a run
# stopped at its limit still brings back what it finished; compare_grid.py resumes it.
#   bash benchmarks/gpu_grid.sh SECONDS [compare_grid.py run arguments...]
# Needs the datasets under $JAXCOND_DATA_DIR (default .data in the repository root).
# GRID_OUT (default runs/grid) is compare_grid.py's --out; GRID_MODE (default run) its mode
# (`list` runs no worker: the smoke test's way through the script).
set -u
cd "$(dirname "$0")/.."
limit=${1:?time limit in seconds}
shift
export JAXCOND_DATA_DIR=${JAXCOND_DATA_DIR:-$PWD/.data}
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
export JAX_COMPILATION_CACHE_DIR=/tmp/jax-cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
out=${OUT:-/tmp/out}
grid=${GRID_OUT:-runs/grid}
mkdir -p "$out" "$grid"

pack() {  # rows, reports and logs only: the sets themselves stay behind
  tar czf "$out/grid.tmp" --exclude='*.npz' --exclude='*.csv' --exclude='*.tsv' \
    --exclude='*.inter' --exclude='*.png' "$grid" 2>/dev/null \
    && mv "$out/grid.tmp" "$out/grid.tar.gz"
}

nvidia-smi -L 2>/dev/null
python3 -c 'import jax, sys; print(sys.version.split()[0], "jax", jax.__version__, jax.devices())'
(while sleep 30; do pack; done) >/dev/null 2>&1 &  # holds no pipe of ours
packer=$!
timeout "$limit" python3 benchmarks/compare_grid.py "${GRID_MODE:-run}" --out="$grid" "$@"
rc=$?
kill "$packer" 2>/dev/null
pack
cat "$grid"/logs/*.log 2>/dev/null | grep -c "retention ndcg@10" | xargs echo "rows finished:"
exit $rc
