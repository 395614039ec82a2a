#!/usr/bin/env bash
# Long fuzzing of every libFuzzer target (build/fuzz/fuzz_<name>, built by `make fuzz`)
# with its corpus kept in the repo (tests/fuzz/corpus/<name>/).  Not part of `make test`.
#
# Per target: libFuzzer runs for FUZZ_LONG_SECONDS on a fresh temporary directory (where it
# writes what it finds) plus the repo corpus (read only), with tests/fuzz/dict/<name>.dict
# when there is one.  Then `-merge=1` copies into the repo corpus only the new inputs that add
# coverage, so the corpus grows by what is worth keeping and nothing else.  A crash, leak,
# timeout or out-of-memory input is kept in build/fuzz-crashes/<name>/ and the script prints
# how to reproduce it; the run goes on with the next target and exits 1 at the end.
#
# Environment:
#   FUZZ_LONG_SECONDS   seconds per target (default 300)
#   FUZZ_LONG_TARGETS   names to run, space separated (default: every build/fuzz/fuzz_*)
#   FUZZ_LONG_MAX_LEN   input size cap for every target (default per target, see max_len())
#   FUZZ_LONG_MERGE     0 to leave the repo corpus alone (default 1)
#   FUZZ_LONG_ARGS      extra libFuzzer flags (e.g. "-use_value_profile=1")
# Logs: build/fuzz-long/<name>.log (the run) and <name>.merge.log.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_LONG_SECONDS:-300}
merge=${FUZZ_LONG_MERGE:-1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# The largest input worth keeping for each target: requests are JSON documents, a frame
# stream needs room for two 8 KiB header blocks; anything new gets the JSON default.
max_len() {
  if [ -n "${FUZZ_LONG_MAX_LEN:-}" ]; then echo "$FUZZ_LONG_MAX_LEN"; return; fi
  case $1 in
    frame) echo 16384 ;;
    http) echo 16384 ;;
    *) echo 65536 ;;
  esac
}

# Files and bytes in a directory: "N B".
count() { find "$1" -maxdepth 1 -type f | wc -l; }
bytes() { find "$1" -maxdepth 1 -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }

targets=()
if [ -n "${FUZZ_LONG_TARGETS:-}" ]; then
  for n in $FUZZ_LONG_TARGETS; do targets+=("build/fuzz/fuzz_$n"); done
else
  for f in build/fuzz/fuzz_*; do
    [ -f "$f" ] && [ -x "$f" ] && targets+=("$f")
  done
fi
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz-long: no targets in build/fuzz/ (run make fuzz)" >&2
  exit 2
fi

mkdir -p build/fuzz-long
rows=()
failed=0
for bin in "${targets[@]}"; do
  name=${bin##*/fuzz_}
  if [ ! -x "$bin" ]; then
    echo "fuzz-long: $bin is missing" >&2
    failed=1
    continue
  fi
  corpus=tests/fuzz/corpus/$name
  dict=tests/fuzz/dict/$name.dict
  crashes=build/fuzz-crashes/$name
  log=build/fuzz-long/$name.log
  len=$(max_len "$name")
  mkdir -p "$corpus" "$crashes"
  work=$(mktemp -d "build/fuzz-long/$name.XXXXXX")
  before_n=$(count "$corpus")
  before_b=$(bytes "$corpus")
  crashes_before=$(count "$crashes")
  args=(-max_total_time="$seconds" -max_len="$len" -timeout=30 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$crashes/")
  [ -f "$dict" ] && args+=(-dict="$dict")
  # shellcheck disable=SC2206 # FUZZ_LONG_ARGS is a list of flags
  args+=(${FUZZ_LONG_ARGS:-})

  echo "== fuzz_$name: ${seconds}s, max_len $len, corpus $before_n files$([ -f "$dict" ] && echo ", dict $dict")"
  # The temporary directory comes first: libFuzzer writes new inputs to the first one only.
  timeout -k 10 $((seconds + 300)) "$bin" "${args[@]}" "$work" "$corpus" >"$log" 2>&1
  st=$?

  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  found=$(count "$work")

  added=0
  if [ "$merge" = 1 ] && [ "$found" -gt 0 ]; then
    if "$bin" -merge=1 -max_len="$len" -timeout=30 -rss_limit_mb=2048 "$corpus" "$work" \
        >"build/fuzz-long/$name.merge.log" 2>&1; then
      added=$(( $(count "$corpus") - before_n ))
    else
      echo "fuzz_$name: merge failed, see build/fuzz-long/$name.merge.log" >&2
      failed=1
    fi
  fi
  after_b=$(bytes "$corpus")
  rm -rf "$work"

  new_crashes=$(( $(count "$crashes") - crashes_before ))
  if [ "$st" -ne 0 ] || [ "$new_crashes" -gt 0 ]; then
    failed=1
    echo "fuzz_$name: FAILED (libFuzzer exit $st). Last lines of $log:"
    grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | tail -8 | sed 's/^/  /'
    for c in $(ls -t "$crashes" | head -"$(( new_crashes > 0 ? new_crashes : 0 ))"); do
      echo "  input: $crashes/$c"
      echo "  reproduce: $bin $crashes/$c"
    done
  fi
  rows+=("$(printf '%-12s %12s %8s %6s %7s %5s %8s %11s %11s %7s' "fuzz_$name" "${runs:-?}" \
    "${speed:-?}" "${cov:-?}" "${ft:-?}" "${rss:-?}" "$found" "$before_n/$((before_b / 1024))K" \
    "$(count "$corpus")/$((after_b / 1024))K" "$new_crashes")")
done

echo
printf '%-12s %12s %8s %6s %7s %5s %8s %11s %11s %7s\n' target runs exec/s cov ft rssMB found \
  corpus0 corpus1 crashes
for r in "${rows[@]}"; do echo "$r"; done
echo "(found: inputs libFuzzer kept this run; corpus0/corpus1: repo corpus files/size before and after the merge)"
if [ "$failed" -ne 0 ]; then
  echo "fuzz-long: FAILED (inputs in build/fuzz-crashes/)"
  exit 1
fi
echo "fuzz-long: ok"
