#!/usr/bin/env bash
# decode_fast in one GPU call, from prebuilt binaries (build folder $1, default build-dec):
# the GPU tests, compute-sanitizer memcheck + racecheck on the small suites, the decode grid
# timing and the torch baselines side by side, then the joined report. Logs and CSVs go to $OUT.
#   bench/decode_fast_gpu_check.sh [BUILD_DIR] [--no-sanitizer] [--no-torch]
set -u
BUILD=${1:-build-dec}
shift || true
SANITIZE=1
TORCH=1
for arg in "$@"; do
  case $arg in
    --no-sanitizer) SANITIZE=0 ;;
    --no-torch) TORCH=0 ;;
  esac
done
OUT=${OUT:-/tmp/decode_fast_out}
mkdir -p "$OUT"
TESTS=$BUILD/tests/sfa_gpu_tests
TIMING=$BUILD/bench/decode_fast_timing
summary=()

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$OUT/gpu.txt"

timeout 240 "$TESTS" --gtest_filter='*DecodeFast*' > "$OUT/tests.log" 2>&1
summary+=("gpu tests rc=$? ($(grep -cE '^\[       OK \]' "$OUT/tests.log") ok, $(grep -cE '^\[  FAILED  \]' "$OUT/tests.log") failed lines)")
grep -E '^\[  FAILED  \]|Failure|error|passed|skipped' "$OUT/tests.log" | head -40

if [ "$SANITIZE" = 1 ]; then
  # memcheck on both dtypes; racecheck (slower, and the shared-memory traffic does not depend on
  # the dtype) on bfloat16 only.
  for run in "memcheck:*DecodeFastSmall*" "racecheck:*DecodeFastSmall*bfloat16"; do
    tool=${run%%:*}
    timeout 200 compute-sanitizer --tool "$tool" --error-exitcode 9 "$TESTS" \
      --gtest_filter="${run#*:}" > "$OUT/$tool.log" 2>&1
    summary+=("$tool rc=$? ($(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | tail -1))")
  done
fi

timeout 240 "$TIMING" --reps 20 --csv "$OUT/decode_fast_timing.csv" 2>&1 | tee "$OUT/timing.log"
summary+=("timing rc=${PIPESTATUS[0]}")

if [ "$TORCH" = 1 ]; then
  PYTHONUNBUFFERED=1 timeout 300 python3 bench/decode_fast_torch.py --reps 20 --csv "$OUT/decode_fast_torch.csv" \
    2>&1 | grep -v Warning | tee "$OUT/torch.log"
  summary+=("torch rc=${PIPESTATUS[0]}")
  python3 bench/decode_fast_report.py "$OUT/decode_fast_timing.csv" "$OUT/decode_fast_torch.csv" \
    "$OUT/decode_fast_grid.md" "$OUT/decode_fast_grid.png" > /dev/null 2>&1
fi
printf '%s\n' "${summary[@]}"
