#!/usr/bin/env bash
# Runs every test: unit tests (plain and ASan/UBSan builds), a bounded fuzz
# run of each parser target, and the end-to-end suite (real runtime, fake
# model, official clients) against the plain and the ASan/UBSan gateway.
# Prints "N passed, N failed" last; exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export COPILOT_RUNTIME=${COPILOT_RUNTIME:-$PWD/node_modules/@github/copilot-sdk-linux-x64/prebuilds/linux-x64/copilot-runtime}

count() { # name, status
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

echo "== unit tests"
for t in $(find build/tests build/asan/tests -type f -executable 2>/dev/null | sort); do
  out=$(timeout 120 "$t" 2>&1); st=$?
  if [ $st -ne 0 ]; then echo "$out"; fi
  echo "$t: $( [ $st -eq 0 ] && echo ok || echo FAILED)"
  count "$t" $st
done

echo "== fuzz (bounded)"
for f in build/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  name=${f##*/fuzz_}
  work=$(mktemp -d)
  cp -r tests/fuzz/corpus/"$name"/. "$work"/ 2>/dev/null || true
  timeout 120 "$f" -max_total_time="${FUZZ_SECONDS:-20}" -print_final_stats=0 "$work" >"$work.log" 2>&1; st=$?
  [ $st -ne 0 ] && tail -40 "$work.log"
  echo "$f: $( [ $st -eq 0 ] && echo ok || echo FAILED)"
  count "$f" $st
  rm -rf "$work" "$work.log"
done

run_e2e() { # label, binary
  echo "== end-to-end ($1)"
  log=$(mktemp)
  COPILOT_GATEWAY_BIN=$2 timeout 1500 node --test --test-timeout=180000 tests/e2e/ 2>&1 | tee "$log"
  local p f
  p=$(grep -E '^# pass [0-9]+' "$log" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$log" | tail -1 | awk '{print $3}')
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ -z "$p" ]; then failed=$((failed + 1)); failures+=("e2e ($1): runner did not finish"); fi
  [ "${f:-0}" -gt 0 ] && failures+=("e2e ($1): ${f} failed")
  rm -f "$log"
}
run_e2e plain build/copilot-gateway
run_e2e "asan+ubsan" build/asan/copilot-gateway

echo
for x in "${failures[@]}"; do echo "FAILED: $x"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
