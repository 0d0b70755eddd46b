#!/usr/bin/env bash
# decode_fast in one GPU call, from prebuilt binaries: the GPU tests, the decode grid timing and
# the torch baselines side by side (optionally several times, and a baseline build's timing in
# the same call) with the joined report, then compute-sanitizer memcheck + racecheck on the small
# suites. Logs and CSVs are packed into $OUT/decode_fast_check.tar.gz (a device call returns at
# most 8 files); the summary is printed last.
#   bench/decode_fast_gpu_check.sh [--build DIR] [--baseline DIR] [--repeat N] [--splits LIST]
#                                  [--no-tests] [--no-sanitizer] [--no-torch]
#     --build DIR     build folder with tests/sfa_gpu_tests and bench/decode_fast_timing (build-dec)
#     --baseline DIR  another build's bench/decode_fast_timing, timed after each run, no sweep
#                     (repeatable: several builds, in the order given)
#     --repeat N      timing + torch N times (default 1); the first run sweeps split counts
#     --splits LIST   that sweep (decode_fast_timing --splits; default the tool's)
set -u
. "$(dirname "$0")/decode_fast_sanitize.sh"
BUILD=build-dec
BASELINES=()
REPEAT=1
SPLITS=""
TESTS_ON=1
SANITIZE=1
TORCH=1
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift ;;
    --baseline) BASELINES+=("$2"); shift ;;
    --repeat) REPEAT=$2; shift ;;
    --splits) SPLITS=$2; shift ;;
    --no-tests) TESTS_ON=0 ;;
    --no-sanitizer) SANITIZE=0 ;;
    --no-torch) TORCH=0 ;;
  esac
  shift
done
OUT=${OUT:-/tmp/decode_fast_out}
WORK=$(mktemp -d)
mkdir -p "$OUT"
TESTS=$BUILD/tests/sfa_gpu_tests
TIMING=$BUILD/bench/decode_fast_timing
summary=()

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$WORK/gpu.txt"

if [ "$TESTS_ON" = 1 ]; then
  timeout 180 "$TESTS" --gtest_filter='*DecodeFast*' > "$WORK/tests.log" 2>&1
  rc=$?
  summary+=("gpu tests rc=$rc ($(grep -cE '^\[       OK \]' "$WORK/tests.log") ok, $(grep -cE '^\[  FAILED  \]' "$WORK/tests.log") failed lines)")
  grep -E '^\[  FAILED  \]|Failure|error|passed|skipped' "$WORK/tests.log" | head -40
  if [ "$rc" = 124 ]; then  # a hang: nothing after it would be worth the device time
    tail -30 "$WORK/tests.log"
    tar -czf "$OUT/decode_fast_check.tar.gz" -C "$WORK" .
    printf '%s\n' "${summary[@]}"
    exit 1
  fi
fi

for r in $(seq 1 "$REPEAT"); do
  sweep=()
  if [ "$r" = 1 ] && [ -n "$SPLITS" ]; then sweep=(--splits "$SPLITS"); fi
  if [ "$r" != 1 ]; then sweep=(--splits none); fi
  timeout 240 "$TIMING" --reps 20 --csv "$WORK/decode_fast_timing_$r.csv" "${sweep[@]}" 2>&1 | tee "$WORK/timing_$r.log"
  summary+=("timing $r rc=${PIPESTATUS[0]}")
  for base in "${BASELINES[@]}"; do
    name=$(basename "$base")
    timeout 240 "$base/bench/decode_fast_timing" --reps 20 --csv "$WORK/${name}_timing_$r.csv" --splits none \
      2>&1 | tee "$WORK/${name}_timing_$r.log"
    summary+=("$name timing $r rc=${PIPESTATUS[0]}")
  done
  if [ "$TORCH" = 1 ]; then
    PYTHONUNBUFFERED=1 timeout 300 python3 bench/decode_fast_torch.py --reps 20 --csv "$WORK/decode_fast_torch_$r.csv" \
      2>&1 | grep -v Warning | tee "$WORK/torch_$r.log"
    summary+=("torch $r rc=${PIPESTATUS[0]}")
    python3 bench/decode_fast_report.py "$WORK/decode_fast_timing_$r.csv" "$WORK/decode_fast_torch_$r.csv" \
      "$WORK/decode_fast_grid_$r.md" > /dev/null 2>&1
    grep -E '^\| [0-9]' "$WORK/decode_fast_grid_$r.md" | awk -F'|' '{print $2,$3,$4,$8,$9,$11}'
  fi
done

[ "$SANITIZE" = 1 ] && decode_fast_sanitize "$TESTS" "$WORK" 150

tar -czf "$OUT/decode_fast_check.tar.gz" -C "$WORK" .
printf '%s\n' "${summary[@]}"
