#!/usr/bin/env bash
# Nsight Compute on one decode_fast launch per build (caches flushed before each pass, clocks left
# as they are): duration, warp states, and per-SASS-instruction stall samples, printed as CSV into
# $OUT/decode_fast_profile_SKIP.tar.gz.
#   bench/decode_fast_profile.sh POINT KERNEL_REGEX SKIP BUILD_DIR...
#     POINT         one grid point b/h/hkv/kv (decode_fast_timing --points)
#     KERNEL_REGEX  e.g. cluster_kernel
#     SKIP          launches of that kernel to skip first (decode_fast_timing warms up 3 times)
set -u
POINT=$1; REGEX=$2; SKIP=$3; shift 3
OUT=${OUT:-/tmp/decode_fast_out}
WORK=$(mktemp -d)
mkdir -p "$OUT"
for b in "$@"; do
  name=$(basename "$b")_skip$SKIP
  timeout 120 ncu --clock-control none --cache-control all -k "regex:$REGEX" --launch-skip "$SKIP" --launch-count 1 \
    --section SpeedOfLight --section WarpStateStats --section SourceCounters --section LaunchStats \
    --warp-sampling-interval 0 -f -o "$WORK/$name" \
    "$b/bench/decode_fast_timing" --points "$POINT" --splits none --reps 5 --csv /dev/null > "$WORK/${name}_ncu.log" 2>&1
  echo "$name ncu rc=$?"
  ncu -i "$WORK/$name.ncu-rep" --page details --csv > "$WORK/${name}_details.csv" 2>&1
  ncu -i "$WORK/$name.ncu-rep" --page source --print-source sass --csv > "$WORK/${name}_source.csv" 2>&1
  grep -E '"Duration"|"Warp Cycles Per Issued|"Executed Ipc Active' "$WORK/${name}_details.csv" | cut -c1-200
done
tar -czf "$OUT/decode_fast_profile_$SKIP.tar.gz" -C "$WORK" .
