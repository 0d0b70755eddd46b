#!/usr/bin/env bash
# fa2_mma on the GPU machine in one command, from binaries built elsewhere (sm_90a, carried):
#   1. the interleaved PyTorch comparison (bench/fa2_mma_compare.py: torch flash, cuDNN, the
#      shipped configuration and the variants of bench/fa2_mma_tuning), RUNS passes
#   2. the fa2_mma GPU tests (TESTS=1, gtest filter TEST_FILTER)
#   3. compute-sanitizer memcheck and racecheck on the small suites (SANITIZE=memcheck,racecheck)
#   4. optional: the block phases of the probed variants (PHASES="bf16 64 0 512;..." shapes, the
#      tuning server's "phases" command) and Nsight Compute sections of the shipped kernel
#      (NCU="bf16 64 0 512;..." shapes)
# usage: OUT=dir RUNS=2 [CONFIGS=bf16:64,...] bench/fa2_mma_check.sh <build dir>
# Writes under $OUT: check.log (GPU, test and sanitizer summaries), fa2_mma_compare.md/.json and
# fa2_mma_vs_torch.png; prints the comparison and the summary last.
set -u
BUILD=${1:-build-mma}
OUT=${OUT:-./fa2_mma_check_out}
RUNS=${RUNS:-2}
TESTS=${TESTS:-1}
TEST_FILTER=${TEST_FILTER:-Fa2Mma*}
SANITIZE=${SANITIZE:-memcheck,racecheck}
CONFIGS=${CONFIGS:-bf16:64,bf16:128,bf16:256,fp16:128}
PHASES=${PHASES:-}
NCU=${NCU:-}
mkdir -p "$OUT"
LOG=$OUT/check.log
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv >"$LOG" 2>&1

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
  rc=$?
  echo "$tool: rc=$rc $(($(date +%s) - start)) s; $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED' "$OUT/$tool.txt" | tr '\n' ' ')" >>"$LOG"
  [ "$rc" = 0 ] || grep -m 40 -A 3 -E '^========= (Error|Warning|Race|Invalid)' "$OUT/$tool.txt" >>"$LOG"
  rm -f "$OUT/$tool.txt"
done

if [ -n "$PHASES" ]; then
  IFS=';' read -ra shapes <<<"$PHASES"
  for sh in "${shapes[@]}"; do printf 'shape %s\ntime 3\nphases\n' "$sh"; done | timeout 120 "$BUILD/bench/fa2_mma_tuning" \
    >"$OUT/phases.txt" 2>&1
  echo "phases: rc=$?" >>"$LOG"
  grep -E '^(kernels|phases)' "$OUT/phases.txt" >>"$LOG"
fi
if [ -n "$NCU" ]; then
  IFS=';' read -ra shapes <<<"$NCU"
  for sh in "${shapes[@]}"; do
    printf 'shape %s\nquit\n' "$sh" | timeout 120 ncu --clock-control none --kernel-name regex:fa2_mma_kernel --launch-count 1 \
      --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section Occupancy \
      --section MemoryWorkloadAnalysis "$BUILD/bench/fa2_mma_tuning" >"$OUT/ncu.txt" 2>&1
    echo "ncu $sh: rc=$?" >>"$LOG"
    grep -E 'Duration|Compute \(SM\) Through|Memory Through|DRAM Through|Stall|Warp Cycles Per|Issued Warp|No Eligible|Active Warps Per|Achieved Occ|Eligible Warps|L2 Hit|L1/TEX Hit|One or More|stalled' "$OUT/ncu.txt" \
      | sed 's/  */ /g' >>"$LOG"
    rm -f "$OUT/ncu.txt"
  done
fi

start=$(date +%s)
PYTHONUNBUFFERED=1 timeout 420 python3 bench/fa2_mma_compare.py "$BUILD/bench/fa2_mma_tuning" "$OUT" --runs "$RUNS" \
  --configs "$CONFIGS" >"$OUT/compare_stdout.txt" 2>&1
echo "compare: rc=$? $(($(date +%s) - start)) s; $(grep median "$OUT/compare_stdout.txt")" >>"$LOG"
tail -n 5 "$OUT/compare_stdout.txt" >>"$LOG"
nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv,noheader >>"$LOG" 2>&1
cat "$OUT/fa2_mma_compare.md" 2>/dev/null
cat "$LOG"
