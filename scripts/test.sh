#!/usr/bin/env bash
# Runs every test: unit tests (plain and ASan/UBSan builds), a bounded fuzz
# run of each parser target, and the end-to-end suite (real runtime, fake
# model, official clients) against the plain and the ASan/UBSan gateway.
# Prints "N passed, N failed" last; exits non-zero if anything failed.
#
# Parallelism (measured on 2 cores; see the README):
#   TEST_JOBS         unit test binaries and fuzz targets run at once (default: cores)
#   E2E_CONCURRENCY   end-to-end files run at once in each pass (default 2)
#   E2E_SERIAL=1      run the plain and the ASan/UBSan e2e passes one after the other
#                     (by default they run side by side, each gateway binary its own pass)
# Each e2e file starts its own fake model, gateway and runtime on free ports in temporary
# directories, so files may run side by side; timing is never asserted.
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
failures=()
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export COPILOT_RUNTIME=${COPILOT_RUNTIME:-$PWD/node_modules/@github/copilot-sdk-linux-x64/prebuilds/linux-x64/copilot-runtime}
jobs_max=${TEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
e2e_conc=${E2E_CONCURRENCY:-2}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

count() { # name, status
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

# A pool of at most $jobs_max background commands; results are reported in start order.
# pool_start NAME CMD...: runs CMD (output to $work/N.out, status to $work/N.st).
# pool_finish: waits for all, prints each one's "NAME: ok|FAILED" (its output if it failed).
pool_names=()
pool_start() {
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
  local i=${#pool_names[@]}
  pool_names+=("$1"); shift
  ( "$@" >"$work/$i.out" 2>&1; echo $? >"$work/$i.st" ) &
}
pool_finish() {
  wait
  local i st
  for i in "${!pool_names[@]}"; do
    st=$(cat "$work/$i.st" 2>/dev/null || echo 1)
    [ "$st" -ne 0 ] && cat "$work/$i.out"
    echo "${pool_names[$i]}: $( [ "$st" -eq 0 ] && echo ok || echo FAILED)"
    count "${pool_names[$i]}" "$st"
    rm -f "$work/$i.out" "$work/$i.st"
  done
  pool_names=()
}

echo "== unit tests"
for t in $(find build/tests build/asan/tests -type f -executable 2>/dev/null | sort); do
  pool_start "$t" timeout 120 "$t"
done
pool_finish

fuzz_one() { # binary name: FUZZ_SECONDS from the target's corpus copy; its log tail on failure
  local dir st
  dir=$(mktemp -d)
  cp -r tests/fuzz/corpus/"$2"/. "$dir"/ 2>/dev/null || true
  timeout 120 "$1" -max_total_time="${FUZZ_SECONDS:-20}" -print_final_stats=0 "$dir" >"$dir.log" 2>&1; st=$?
  [ $st -ne 0 ] && tail -40 "$dir.log"
  rm -rf "$dir" "$dir.log"
  return $st
}
echo "== fuzz (bounded)"
for f in build/fuzz/fuzz_*; do
  [ -x "$f" ] || continue
  pool_start "$f" fuzz_one "$f" "${f##*/fuzz_}"
done
pool_finish

e2e_run() { # label, binary, log: the whole suite against that gateway binary
  COPILOT_GATEWAY_BIN=$2 timeout 1500 node --test --test-concurrency="$e2e_conc" \
    --test-timeout=180000 tests/e2e/ >"$3" 2>&1
}
e2e_count() { # label, log
  echo "== end-to-end ($1)"
  cat "$2"
  local p f
  p=$(grep -E '^# pass [0-9]+' "$2" | tail -1 | awk '{print $3}')
  f=$(grep -E '^# fail [0-9]+' "$2" | tail -1 | awk '{print $3}')
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  if [ -z "$p" ]; then failed=$((failed + 1)); failures+=("e2e ($1): runner did not finish"); fi
  if [ "${f:-0}" -gt 0 ]; then
    failures+=("e2e ($1): ${f} failed")
    while IFS= read -r t; do failures+=("e2e ($1): ${t#not ok }"); done < <(grep -E '^not ok [0-9]+ - ' "$2")
  fi
}
if [ "${E2E_SERIAL:-0}" = 1 ]; then
  e2e_run plain build/copilot-gateway "$work/e2e-plain.log"
  e2e_count plain "$work/e2e-plain.log"
  e2e_run "asan+ubsan" build/asan/copilot-gateway "$work/e2e-asan.log"
  e2e_count "asan+ubsan" "$work/e2e-asan.log"
else
  echo "== end-to-end (plain and asan+ubsan side by side, $e2e_conc files at once each)"
  e2e_run plain build/copilot-gateway "$work/e2e-plain.log" &
  e2e_run "asan+ubsan" build/asan/copilot-gateway "$work/e2e-asan.log" &
  wait
  e2e_count plain "$work/e2e-plain.log"
  e2e_count "asan+ubsan" "$work/e2e-asan.log"
fi

echo
for x in "${failures[@]}"; do echo "FAILED: $x"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
