#!/bin/bash
# make check: every fuzz harness (built with test/fuzz/replay_main.cc, no
# libFuzzer) run once over its seed corpus test/fuzz/corpus/NAME, which
# holds the inputs of every crash found so far.  One line per harness, then
# "fuzz-replay: N passed, N failed".  Exit status 77 (skipped) when the
# harnesses could not be built (no FuzzedDataProvider.h at configure time).
# make check runs this from the top of the build directory, where the
# harnesses are; the corpora are in the source directory ($srcdir: they differ
# in a VPATH build).  Run by hand, both are beside this script.
here=$(cd "$(dirname "$0")" && pwd)
bin=$PWD/test/fuzz
[ -x "$bin/replay_sql" ] || bin=$here
src=${srcdir:-.}/test/fuzz
[ -d "$src/corpus" ] || src=$here
if [ ! -x "$bin/replay_sql" ]; then
  echo "fuzz-replay: skipped, the replay harnesses were not built (configure found no fuzzer/FuzzedDataProvider.h: apt-get install libclang-rt-14-dev)"
  exit 77
fi
passed=0 failed=0
for name in packets response_tracker prepared_statements sql control_pipe login_name config shm_reader fleet; do
  corpus=$src/corpus/$name
  if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
    echo "not ok - fuzz-replay/$name: no corpus in $corpus"
    failed=$((failed + 1))
    continue
  fi
  out=$(mktemp)
  # shm_reader maps its inputs as segments: keep them apart from others'.
  MYRELAY_FUZZ_SHM_PREFIX="mrreplay$$" timeout 600 "$bin/replay_$name" "$corpus" >"$out" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "ok - fuzz-replay/$name: $(tail -1 "$out")"
    passed=$((passed + 1))
  else
    echo "not ok - fuzz-replay/$name: exit status $rc"
    grep -v '^replay: ' "$out" | head -40 | sed 's/^/#   /'
    grep '^replay: ' "$out" | tail -1 | sed 's/^/#   last input: /'
    failed=$((failed + 1))
  fi
  rm -f "$out"
done
echo "fuzz-replay: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
