#!/usr/bin/env bash
# fa2_mma on the GPU machine in one command, from binaries built elsewhere (sm_90a, carried):
#   1. the PyTorch comparison (bench/fa2_mma_compare.py: torch flash, cuDNN, the shipped
#      configuration and the tile variants of bench/fa2_mma_tuning), RUNS times
#   2. the fa2_mma GPU tests (TESTS=1, gtest filter TEST_FILTER)
#   3. compute-sanitizer memcheck and racecheck on the small suites (SANITIZE=memcheck,racecheck)
# usage: OUT=dir RUNS=2 bench/fa2_mma_check.sh <build dir>
# Writes under $OUT: check.log (GPU, test and sanitizer summaries), runN/fa2_mma_compare.md and
# runN/fa2_mma_vs_torch.png; prints the summary last.
set -u
BUILD=${1:-build-mma}
OUT=${OUT:-./fa2_mma_check_out}
RUNS=${RUNS:-1}
TESTS=${TESTS:-1}
TEST_FILTER=${TEST_FILTER:-Fa2Mma*}
SANITIZE=${SANITIZE:-memcheck,racecheck}
mkdir -p "$OUT"
LOG=$OUT/check.log
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv >"$LOG" 2>&1

for i in $(seq "$RUNS"); do
  mkdir -p "$OUT/run$i"
  start=$(date +%s)
  PYTHONUNBUFFERED=1 timeout 240 python3 bench/fa2_mma_compare.py "$BUILD/bench/fa2_mma_tuning" "$OUT/run$i" \
    >"$OUT/run$i/stdout.txt" 2>&1
  echo "compare run $i: rc=$? $(($(date +%s) - start)) s; $(grep median "$OUT/run$i/stdout.txt")" >>"$LOG"
  rm -f "$OUT/run$i/stdout.txt"
done

if [ "$TESTS" = 1 ]; then
  start=$(date +%s)
  timeout 240 "$BUILD/tests/sfa_gpu_tests" --gtest_filter="$TEST_FILTER" >"$OUT/tests.txt" 2>&1
  echo "tests: rc=$? $(($(date +%s) - start)) s" >>"$LOG"
  grep -E '^\[  (PASSED|FAILED) |^\[  FAILED|Failure|^\[       OK|Expected|Which is|Value of' "$OUT/tests.txt" | head -60 >>"$LOG"
  rm -f "$OUT/tests.txt"
fi
for tool in ${SANITIZE//,/ }; do
  start=$(date +%s)
  timeout 240 compute-sanitizer --tool "$tool" --error-exitcode 1 "$BUILD/tests/sfa_gpu_tests" \
    --gtest_filter='Fa2MmaSmall.*' >"$OUT/$tool.txt" 2>&1
  echo "$tool: rc=$? $(($(date +%s) - start)) s; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED' "$OUT/$tool.txt" | tr '\n' ' ')" >>"$LOG"
  rm -f "$OUT/$tool.txt"
done
cat "$LOG"
