#!/usr/bin/env bash
# decode_fast A/B timing in one GPU call: several prebuilt builds timed in turn, several rounds
# (so a build's number is never from one process only), at chosen grid points, with the torch
# baselines of the same points in the same call; optionally the GPU tests and compute-sanitizer of
# the first build first. Logs and CSVs go into $OUT/decode_fast_ab.tar.gz; the table
# (bench/decode_fast_ab.py) is printed last.
#   bench/decode_fast_ab.sh --points LIST [--rounds N] [--reps N] [--tests] [--sanitizer] [--torch N]
#                           [--sweep LIST] BUILD_DIR...
#     BUILD_DIR...  the first is the candidate, the others the baselines
#     --sweep LIST  split counts the candidate also runs in every round (decode_fast_timing --splits)
set -u
. "$(dirname "$0")/decode_fast_sanitize.sh"
POINTS=""
ROUNDS=3
REPS=100
TESTS_ON=0
SANITIZE=0
TORCH_ROUNDS=1
SWEEP=none
BUILDS=()
while [ $# -gt 0 ]; do
  case $1 in
    --points) POINTS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --tests) TESTS_ON=1 ;;
    --sanitizer) SANITIZE=1 ;;
    --torch) TORCH_ROUNDS=$2; shift ;;
    --sweep) SWEEP=$2; shift ;;
    *) BUILDS+=("$1") ;;
  esac
  shift
done
OUT=${OUT:-/tmp/decode_fast_out}
WORK=$(mktemp -d)
mkdir -p "$OUT"
summary=()
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv | tee "$WORK/gpu.txt"
TESTS=${BUILDS[0]}/tests/sfa_gpu_tests

if [ "$TESTS_ON" = 1 ]; then
  timeout 240 "$TESTS" --gtest_filter='*DecodeFast*' > "$WORK/tests.log" 2>&1
  summary+=("gpu tests rc=$? ($(grep -cE '^\[       OK \]' "$WORK/tests.log") ok, $(grep -cE '^\[  FAILED  \]' "$WORK/tests.log") failed lines)")
  grep -E '^\[  FAILED  \]|Failure' "$WORK/tests.log" | head -20
fi

for r in $(seq 1 "$ROUNDS"); do
  for b in "${BUILDS[@]}"; do
    name=$(basename "$b")
    splits=none
    if [ "$b" = "${BUILDS[0]}" ]; then splits=$SWEEP; fi
    timeout 200 "$b/bench/decode_fast_timing" --reps "$REPS" --points "$POINTS" --splits "$splits" \
      --csv "$WORK/t_${name}_$r.csv" > "$WORK/t_${name}_$r.log" 2>&1
    rc=$?
    [ "$rc" = 0 ] || summary+=("$name round $r rc=$rc")
  done
  if [ "$r" -le "$TORCH_ROUNDS" ]; then
    PYTHONUNBUFFERED=1 timeout 200 python3 bench/decode_fast_torch.py --reps "$REPS" --points "$POINTS" \
      --csv "$WORK/torch_$r.csv" > "$WORK/torch_$r.log" 2>&1
    summary+=("torch $r rc=$?")
  fi
done

[ "$SANITIZE" = 1 ] && decode_fast_sanitize "$TESTS" "$WORK" 200

python3 bench/decode_fast_ab.py "$WORK" "${BUILDS[@]}" | tee "$WORK/ab.md"
tar -czf "$OUT/decode_fast_ab.tar.gz" -C "$WORK" .
printf '%s\n' "${summary[@]}"
