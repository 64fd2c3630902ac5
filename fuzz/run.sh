#!/usr/bin/env bash
# Build the libFuzzer targets of the C parsers and run each for SECONDS
# (default 30).  Exit status non-zero when a target fails to build, when a
# stored regression or seed input fails, or when fuzzing finds a crash, a
# leak, a timeout (-timeout=5) or a broken contract (fuzz/fuzz_parsers.c).
#
#   fuzz/run.sh [SECONDS]
#   TARGETS="stat netdev" JOBS=2 fuzz/run.sh 120
#
# Targets: stat meminfo diskstats netdev loadavg uptime (agent_parse_*),
# cgroup_file and cgroup_walk (the cgroup v2 walker, fuzz/fuzz_cgroups.c),
# load (agent_read_fd and agent_load_* on a memfd; the first input byte picks
# the source and the buffer size), grow (agent_load_* on a file that grows
# while it is read: pread is wrapped to append to it between calls), and
# walk_procs (agent_walk_procs on a tree whose stat files are the input).  Seeds: fuzz/corpus/<target>/ (the fixture
# trees) and fuzz/regressions/<target>/ (minimised crashers, each also a case
# in tests/c/).  New corpus entries and crash artifacts go to fuzz/build/
# (not tracked); a crash is copied next to the log as artifacts/<target>-*.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-30}
CC=${CC:-clang}
JOBS=${JOBS:-1}
build=${FUZZ_BUILD:-fuzz/build}
read -r -a targets <<< "${TARGETS:-stat meminfo diskstats netdev loadavg uptime load grow walk_procs cgroup_file cgroup_walk}"

# walk_procs has a source of its own (fuzz/fuzz_walk_procs.c: the input as a
# stat file of a one-process tree), the cgroup targets fuzz/fuzz_cgroups.c;
# the others are fuzz_parsers.c's.
declare -A index=([stat]=0 [meminfo]=1 [diskstats]=2 [netdev]=3 [loadavg]=4 [uptime]=5 [load]=6 [grow]=7
                  [walk_procs]=walk_procs [cgroup_file]=0 [cgroup_walk]=1)
flags=(-std=c11 -Wall -Wextra -Werror -pedantic -g -O1 -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Icsrc)

mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
    [[ -n ${index[$t]+x} ]] || { echo "unknown target: $t" >&2; exit 2; }
    echo "== build fuzz_$t"
    extra=()
    [[ $t == grow ]] && extra=(-Wl,--wrap=pread)
    if [[ ${index[$t]} == walk_procs ]]; then
        "$CC" "${flags[@]}" fuzz/fuzz_walk_procs.c csrc/*.c -o "$build/fuzz_$t"
        continue
    fi
    if [[ $t == cgroup_* ]]; then
        # The cgroup v2 walker and its file parsers (fuzz/fuzz_cgroups.c).
        "$CC" "${flags[@]}" -DFUZZ_CGROUP="${index[$t]}" fuzz/fuzz_cgroups.c csrc/*.c -o "$build/fuzz_$t"
        continue
    fi
    "$CC" "${flags[@]}" -DFUZZ_SOURCE="${index[$t]}" fuzz/fuzz_parsers.c csrc/*.c "${extra[@]}" -o "$build/fuzz_$t"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
    local t=$1 bin="$build/fuzz_$t" log="$build/$t.log"
    mkdir -p "$build/corpus/$t" "fuzz/regressions/$t"
    # Every stored seed and regression once, on its own, before fuzzing.
    if ! "$bin" -runs=0 -timeout=5 "fuzz/regressions/$t" "fuzz/corpus/$t" > "$log.replay" 2>&1; then
        echo "FAIL $t: a stored input fails (see $log.replay)"
        return 1
    fi
    # The first directory receives new inputs; the seed directories stay as
    # committed.
    if "$bin" -max_len=65536 -timeout=5 -max_total_time="$secs" \
            -dict=fuzz/procfs.dict -print_final_stats=1 \
            -artifact_prefix="$build/artifacts/$t-" \
            "$build/corpus/$t" "fuzz/corpus/$t" "fuzz/regressions/$t" > "$log" 2>&1; then
        echo "ok   $t: $(grep -o 'number_of_executed_units: [0-9]*' "$log" | tail -1 | cut -d' ' -f2) executions in ${secs}s"
    else
        echo "FAIL $t: see $log; artifacts: $(ls "$build"/artifacts/"$t"-* 2>/dev/null | tr '\n' ' ')"
        grep -m3 -E 'ERROR|runtime error|contract broken|SUMMARY' "$log" || true
        return 1
    fi
}

status=0
pids=()
names=()
for t in "${targets[@]}"; do
    run_one "$t" &
    pids+=($!)
    names+=("$t")
    if (( ${#pids[@]} >= JOBS )); then
        wait "${pids[0]}" || status=1
        pids=("${pids[@]:1}")
        names=("${names[@]:1}")
    fi
done
for p in "${pids[@]}"; do
    wait "$p" || status=1
done
exit $status
