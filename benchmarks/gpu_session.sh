#!/usr/bin/env bash
# The GPU parts of the speed issue as one prepared run, for a session that is lent a GPU (a few minutes on an H100).
#
# Here, once: `make gpu-pack` (wheels the GPU image lacks and six dev images, in .gpu/, ignored by git).
# With the `device` tool: carry [".gpu"], command
#     BALDSAM_GIT_COMMIT=$(git rev-parse HEAD) bash benchmarks/gpu_session.sh
# (from a clean, committed tree: the copy there has no usable git history, so the commit is passed in).
# The records come back under $OUT; copy them into benchmarks/results/ and commit them.
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1 BALDSAM_DATA="$PWD/.gpu/data"
nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -m benchmarks.encoder_throughput --device cuda --compile --allow-dirty
python3 -m benchmarks.click_latency --config configs/benchmarks/click_latency.json --device cuda --allow-dirty
mkdir -p "${OUT:-gpu_out}"
cp benchmarks/results/encoder_throughput_h*.json benchmarks/results/click_latency_h*.json "${OUT:-gpu_out}/"
