#!/usr/bin/env bash
cd "$(dirname "$0")/.."
for dom in busi kvasir ph2; do
  for first in box click; do
    .venv/bin/baldsam evaluate --data ../shared/data/dev/$dom --policy oracle,bald,entropy,random_error,random --first $first --clicks 5 --limit 12 --threads 1 --head monai_baldsam/head/weights/general_v0.pt --out "${OUT:-/tmp/headeval}/${dom}_${first}" --overwrite --no-progress > "${OUT:-/tmp/headeval}/${dom}_${first}.log" 2>&1
    echo "$dom $first rc=$?" >> "${OUT:-/tmp/headeval}/done.txt"
  done
done
