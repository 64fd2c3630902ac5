#!/usr/bin/env bash
# Build the C core with its unit tests and run them: once under ASan+UBSan
# (-O0 -g), once at -O2 without sanitizers (some warnings need the
# optimiser's analysis).  CC=gcc or CC=clang; exit status non-zero on any
# warning or failed check.
set -euo pipefail
cd "$(dirname "$0")/../.."

CC=${CC:-cc}
# Without a compiler (the agent then runs on its pure-Python backend) these
# tests cannot run: one line says so, unless CI requires them.
if ! command -v "$CC" >/dev/null 2>&1; then
    if [ "${AGENT_REQUIRE_C:-}" = 1 ]; then
        echo "tests/c/run.sh: no C compiler ($CC not found) and AGENT_REQUIRE_C=1" >&2
        exit 1
    fi
    echo "SKIPPED: the C tests: no C compiler ($CC not found); install gcc or clang to run them"
    exit 0
fi
out=$(mktemp -d "${TMPDIR:-/tmp}/agent-ctest.XXXXXX")
trap 'rm -rf "$out"' EXIT

# One binary per tests/c/test_*.c (each has its own main), linked with the
# C core and the helpers (the other tests/c/*.c).
helpers=()
for f in tests/c/*.c; do
    [[ $(basename "$f") == test_* ]] || helpers+=("$f")
done
common=(-std=c11 -Wall -Wextra -Werror -pedantic -Icsrc)

for t in tests/c/test_*.c; do
    name=$(basename "$t" .c)
    srcs=(csrc/*.c "${helpers[@]}" "$t")
    echo "== $CC: $name, ASan+UBSan"
    "$CC" "${common[@]}" -g -fsanitize=address,undefined -fno-sanitize-recover=all \
        -fno-omit-frame-pointer "${srcs[@]}" -o "$out/${name}_asan"
    ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=0:detect_leaks=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
        "$out/${name}_asan"

    echo "== $CC: $name, -O2"
    "$CC" "${common[@]}" -O2 "${srcs[@]}" -o "$out/${name}_O2"
    "$out/${name}_O2"
done
