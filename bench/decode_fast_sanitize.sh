# Sourced by the decode_fast GPU scripts: compute-sanitizer over the small decode_fast suites.
# memcheck on both dtypes; racecheck (slower, and the shared-memory traffic does not depend on the
# dtype) on bfloat16 only. Logs go to $2; one line per tool is appended to the caller's `summary`.
#   decode_fast_sanitize <sfa_gpu_tests binary> <log folder> [timeout seconds]
decode_fast_sanitize() {
  local tests=$1 work=$2 limit=${3:-200} run tool
  for run in "memcheck:*DecodeFastSmall*" "racecheck:*DecodeFastSmall*bfloat16"; do
    tool=${run%%:*}
    timeout "$limit" compute-sanitizer --tool "$tool" --error-exitcode 9 "$tests" \
      --gtest_filter="${run#*:}" > "$work/$tool.log" 2>&1
    summary+=("$tool rc=$? ($(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$work/$tool.log" | tail -1); $(grep -cE '^\[       OK \]' "$work/$tool.log") ok)")
  done
}
