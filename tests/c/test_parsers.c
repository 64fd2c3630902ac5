/* Table-driven tests of the C core (docs/PARSERS.md), meant to run under
 * ASan and UBSan: every input is copied into a heap block of exactly its
 * length, so a read past `len` is caught; then every prefix of every input
 * and seeded random mutations of the valid ones are parsed, checking the
 * output invariants; agent_read_fd is tested on real temporary files.
 *
 * Exit status 0 when every check passed, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE /* DT_* for the listing tests */

#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "fake_pread.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IN(s) s, sizeof(s) - 1
#define B(i) ((uint64_t)1 << (i))
#define MASK(n) (B(n) - 1)
#define NROWS 3

/* Names of 64 and 65 bytes: the limit and one past it. */
#define N64 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
#define N65 N64 "!"
_Static_assert(sizeof(N64) - 1 == AGENT_NAME_MAX, "N64 must be 64 bytes");
#define U64MAX "18446744073709551615"
#define U64OVER "18446744073709551616"

struct ctx {
    int run;
    int failed;
};

static void check(struct ctx *t, int ok, const char *suite, const char *name, const char *what)
{
    t->run++;
    if (!ok) {
        t->failed++;
        fprintf(stderr, "FAIL %s/%s: %s\n", suite, name, what);
    }
}

/* A heap copy of exactly len bytes, so ASan flags any read past the end; a
 * zero-length input is passed as NULL, which the parsers must accept. */
static char *dup_exact(const char *in, size_t len)
{
    char *p;

    if (len == 0)
        return NULL;
    p = malloc(len);
    if (!p) {
        perror("malloc");
        exit(2);
    }
    memcpy(p, in, len);
    return p;
}

static const char *rc_name(int rc)
{
    switch (rc) {
    case AGENT_OK: return "OK";
    case AGENT_ETRUNC: return "ETRUNC";
    case AGENT_EROWS: return "EROWS";
    case AGENT_EFORMAT: return "EFORMAT";
    case AGENT_ERANGE: return "ERANGE";
    case AGENT_ENAME: return "ENAME";
    case AGENT_EMISSING: return "EMISSING";
    case AGENT_EIO: return "EIO";
    default: return "?";
    }
}

static void check_rc(struct ctx *t, const char *suite, const char *name,
                     int rc, size_t line, int want_rc, size_t want_line)
{
    char msg[160];

    snprintf(msg, sizeof msg, "got %s line %zu, want %s line %zu",
             rc_name(rc), line, rc_name(want_rc), want_line);
    check(t, rc == want_rc && (rc == AGENT_OK || line == want_line), suite, name, msg);
}

/* ---------------------------------------------------------------- scalars */

/* Uniform signatures, so that one runner serves the four scalar parsers
 * without calling through a mismatched function-pointer type. */
typedef int (*scalar_parse)(const char *buf, size_t len, void *out, size_t *err_line);

/* The per-CPU rows are checked by test_stat_rows; here only the struct. */
static int p_stat(const char *b, size_t n, void *o, size_t *l)
{
    struct agent_cpu rows[8];
    size_t count;

    return agent_parse_stat(b, n, o, rows, 8, &count, l);
}
static int p_meminfo(const char *b, size_t n, void *o, size_t *l) { return agent_parse_meminfo(b, n, o, l); }
static int p_loadavg(const char *b, size_t n, void *o, size_t *l) { return agent_parse_loadavg(b, n, o, l); }
static int p_uptime(const char *b, size_t n, void *o, size_t *l) { return agent_parse_uptime(b, n, o, l); }

union any_scalar {
    struct agent_stat stat;
    struct agent_meminfo meminfo;
    struct agent_loadavg loadavg;
    struct agent_uptime uptime;
};

static void run_scalar(struct ctx *t, const char *suite, const char *name, scalar_parse fn,
                       size_t size, const char *in, size_t len, int want_rc, size_t want_line,
                       const void *want)
{
    union any_scalar out;
    size_t line = 12345;
    char *buf = dup_exact(in, len);
    int rc;

    /* Garbage first: the parser must zero the struct itself. */
    memset(&out, 0xa5, sizeof out);
    rc = fn(buf, len, &out, &line);
    check_rc(t, suite, name, rc, line, want_rc, want_line);
    if (rc == AGENT_OK && want_rc == AGENT_OK) {
        check(t, line == 0, suite, name, "err_line not 0 on success");
        check(t, memcmp(&out, want, size) == 0, suite, name, "struct differs from the expected one");
    }
    free(buf);
}

struct stat_case {
    const char *name;
    const char *in;
    size_t len;
    int rc;
    size_t line;
    struct agent_stat want;
};

#define STAT_CPU_ALL MASK(10)
#define STAT_ALL MASK(AGENT_STAT_NFIELDS)

static const struct stat_case stat_cases[] = {
    { "empty", IN(""), AGENT_EMISSING, 0, { 0 } },
    { "blank lines only", IN("\n \n\t\r\n"), AGENT_EMISSING, 0, { 0 } },
    { "valid", IN("cpu  8206 1 2764 88782 314 5 35 9 7 3\n"
                  "cpu0 1562 0 1365 47106 16 0 7 3 0 0\n"
                  "cpu1 6644 0 1398 41677 297 0 28 6 0 0\n"
                  "intr 1133 9 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
                  "ctxt 310673\n"
                  "btime 1795494206\n"
                  "processes 5770\n"
                  "procs_running 1\n"
                  "procs_blocked 2\n"
                  "softirq 58 0 1 2 3 4 5 6 7 8 9\n"),
      AGENT_OK, 0,
      { .present = STAT_ALL, .cpu_user = 8206, .cpu_nice = 1, .cpu_system = 2764,
        .cpu_idle = 88782, .cpu_iowait = 314, .cpu_irq = 5, .cpu_softirq = 35,
        .cpu_steal = 9, .cpu_guest = 7, .cpu_guest_nice = 3, .intr = 1133, .ctxt = 310673,
        .btime = 1795494206, .processes = 5770, .procs_running = 1, .procs_blocked = 2,
        .cpu_count = 2 } },
    { "no trailing newline", IN("cpu 1 2 3 4"), AGENT_OK, 0,
      { .present = MASK(4), .cpu_user = 1, .cpu_nice = 2, .cpu_system = 3, .cpu_idle = 4 } },
    { "2.6.11 cpu line (8 fields)", IN("cpu 1 2 3 4 5 6 7 8\n"), AGENT_OK, 0,
      { .present = MASK(8), .cpu_user = 1, .cpu_nice = 2, .cpu_system = 3, .cpu_idle = 4,
        .cpu_iowait = 5, .cpu_irq = 6, .cpu_softirq = 7, .cpu_steal = 8 } },
    { "not enough fields", IN("cpu 1 2 3\n"), AGENT_EFORMAT, 1, { 0 } },
    { "cpu alone", IN("cpu\n"), AGENT_EFORMAT, 1, { 0 } },
    { "field count before counters", IN("cpu 1 x " U64OVER "\n"), AGENT_EFORMAT, 1, { 0 } },
    { "more than 10 fields ignored", IN("cpu 1 2 3 4 5 6 7 8 9 10 11 x -\n"), AGENT_OK, 0,
      { .present = STAT_CPU_ALL, .cpu_user = 1, .cpu_nice = 2, .cpu_system = 3,
        .cpu_idle = 4, .cpu_iowait = 5, .cpu_irq = 6, .cpu_softirq = 7, .cpu_steal = 8,
        .cpu_guest = 9, .cpu_guest_nice = 10 } },
    { "huge counter 2^64-1", IN("cpu " U64MAX " 0 0 0\n"), AGENT_OK, 0,
      { .present = MASK(4), .cpu_user = UINT64_MAX } },
    { "huge counter 2^64", IN("cpu " U64OVER " 0 0 0\n"), AGENT_ERANGE, 1, { 0 } },
    { "huge counter 10^20-1", IN("cpu 99999999999999999999 0 0 0\n"), AGENT_ERANGE, 1, { 0 } },
    { "21-digit counter with leading zeros", IN("cpu 000000000000000000001 0 0 0\n"), AGENT_OK, 0,
      { .present = MASK(4), .cpu_user = 1 } },
    { "leading zeros then 2^64-1", IN("cpu 000000" U64MAX " 0 0 0\n"), AGENT_OK, 0,
      { .present = MASK(4), .cpu_user = UINT64_MAX } },
    { "leading zeros then 2^64", IN("cpu 000000" U64OVER " 0 0 0\n"), AGENT_ERANGE, 1, { 0 } },
    { "19 digits (fast path limit)", IN("cpu 9999999999999999999 1234567890123456789 0 0\n"), AGENT_OK, 0,
      { .present = MASK(4), .cpu_user = 9999999999999999999u, .cpu_nice = 1234567890123456789u } },
    { "20 digits below 2^64", IN("cpu 10000000000000000000 00000000000000000001 0 0\n"), AGENT_OK, 0,
      { .present = MASK(4), .cpu_user = 10000000000000000000u, .cpu_nice = 1 } },
    { "19 digits then a non-digit", IN("cpu 1234567890123456789: 0 0 0\n"), AGENT_EFORMAT, 1, { 0 } },
    { "overflow then non-digit is EFORMAT", IN("cpu " U64OVER "x 0 0 0\n"), AGENT_EFORMAT, 1, { 0 } },
    { "non-digit then overflow is EFORMAT", IN("cpu x" U64OVER " 0 0 0\n"), AGENT_EFORMAT, 1, { 0 } },
    { "first error left to right", IN("cpu 1 " U64OVER " x 4\n"), AGENT_ERANGE, 1, { 0 } },
    { "sign", IN("cpu +1 2 3 4\n"), AGENT_EFORMAT, 1, { 0 } },
    { "minus", IN("cpu 1 -2 3 4\n"), AGENT_EFORMAT, 1, { 0 } },
    { "NUL inside a counter", IN("cpu 1\0 2 3 4\n"), AGENT_EFORMAT, 1, { 0 } },
    { "NUL is not white space", IN("cpu 1\0002 3 4\n"), AGENT_EFORMAT, 1, { 0 } },
    { "NUL in a key skips the line", IN("cpu\0 x\ncpu 1 2 3 4\n"), AGENT_OK, 0,
      { .present = MASK(4), .cpu_user = 1, .cpu_nice = 2, .cpu_system = 3, .cpu_idle = 4 } },
    { "only per-cpu lines", IN("cpu0 1 2 3 4\ncpu1 1 2 3 4\n"), AGENT_EMISSING, 0, { 0 } },
    { "duplicate cpu", IN("cpu 1 2 3 4\ncpu 1 2 3 4\n"), AGENT_EFORMAT, 2, { 0 } },
    { "duplicate before counter check", IN("cpu 1 2 3 4\ncpu " U64OVER " 2 3 4\n"),
      AGENT_EFORMAT, 2, { 0 } },
    { "duplicate ctxt", IN("cpu 1 2 3 4\nctxt 1\nctxt 2\n"), AGENT_EFORMAT, 3, { 0 } },
    { "ctxt without value", IN("cpu 1 2 3 4\nctxt\n"), AGENT_EFORMAT, 2, { 0 } },
    { "btime with trailing blanks only", IN("cpu 1 2 3 4\nbtime \t\r\n"), AGENT_EFORMAT, 2, { 0 } },
    { "ctxt bad counter", IN("cpu 1 2 3 4\nctxt 5x\n"), AGENT_EFORMAT, 2, { 0 } },
    { "procs_running huge", IN("cpu 1 2 3 4\nprocs_running " U64OVER "\n"), AGENT_ERANGE, 2, { 0 } },
    { "later scalar fields ignored", IN("cpu 1 2 3 4\nprocesses 9 x y\n"), AGENT_OK, 0,
      { .present = MASK(4) | B(AGENT_STAT_PROCESSES), .cpu_user = 1, .cpu_nice = 2,
        .cpu_system = 3, .cpu_idle = 4, .processes = 9 } },
    { "first error in file order", IN("ctxt x\ncpu 1 2 3\n"), AGENT_EFORMAT, 1, { 0 } },
    { "unknown keys not looked at", IN("softirq x y " U64OVER "\npage\nswap -\ncpu 1 2 3 4\n"),
      AGENT_OK, 0,
      { .present = MASK(4), .cpu_user = 1, .cpu_nice = 2, .cpu_system = 3, .cpu_idle = 4 } },
    { "key prefix is another key", IN("cpux 1\nctxtx y\ncpu 1 2 3 4\n"), AGENT_OK, 0,
      { .present = MASK(4), .cpu_user = 1, .cpu_nice = 2, .cpu_system = 3, .cpu_idle = 4 } },
    { "CRLF and other white space", IN("\f cpu\v1\t2\r3 4\r\nctxt\t7\r\n"), AGENT_OK, 0,
      { .present = MASK(4) | B(AGENT_STAT_CTXT), .cpu_user = 1, .cpu_nice = 2,
        .cpu_system = 3, .cpu_idle = 4, .ctxt = 7 } },
    { "error line counts blank lines", IN("\n\n\ncpu 1\n"), AGENT_EFORMAT, 4, { 0 } },
    { "error on unterminated last line", IN("cpu 1 2 3 4\nctxt -1"), AGENT_EFORMAT, 2, { 0 } },
    { "intr: the first number only", IN("cpu 1 2 3 4\nintr 42 x " U64OVER "\n"), AGENT_OK, 0,
      { .present = MASK(4) | B(AGENT_STAT_INTR), .cpu_user = 1, .cpu_nice = 2, .cpu_system = 3,
        .cpu_idle = 4, .intr = 42 } },
    { "intr without value", IN("intr\ncpu 1 2 3 4\n"), AGENT_EFORMAT, 1, { 0 } },
    { "intr total huge", IN("intr " U64OVER " 1\ncpu 1 2 3 4\n"), AGENT_ERANGE, 1, { 0 } },
    { "duplicate intr", IN("intr 1\ncpu 1 2 3 4\nintr 1\n"), AGENT_EFORMAT, 3, { 0 } },
};

/* The per-CPU rows of /proc/stat, and EROWS. */
struct stat_rows_case {
    const char *name;
    const char *in;
    size_t len;
    size_t cap;
    int rc;
    size_t line;
    size_t count;   /* rows filled: on success, and on EROWS */
    struct agent_cpu want[NROWS];
};

#define CPU_ALL MASK(AGENT_CPU_NFIELDS)
#define AGG "cpu 1 2 3 4\n"

static const struct stat_rows_case stat_rows_cases[] = {
    { "no rows", IN(AGG), 4, AGENT_OK, 0, 0, { { 0 } } },
    { "rows", IN(AGG "cpu0 1 2 3 4 5 6 7 8 9 10\ncpu1 9 8 7 6 5 4 3 2\n cpu7 0 0 0 " U64MAX " 0\n"),
      4, AGENT_OK, 0, 3,
      { { .present = CPU_ALL, .cpu = 0, .user = 1, .nice = 2, .system = 3, .idle = 4, .iowait = 5,
          .irq = 6, .softirq = 7, .steal = 8, .guest = 9, .guest_nice = 10 },
        { .present = MASK(8), .cpu = 1, .user = 9, .nice = 8, .system = 7, .idle = 6, .iowait = 5,
          .irq = 4, .softirq = 3, .steal = 2 },
        { .present = MASK(5), .cpu = 7, .idle = UINT64_MAX } } },
    { "rows before the cpu line", IN("cpu3 1 2 3 4\n" AGG), 4, AGENT_OK, 0, 1,
      { { .present = MASK(4), .cpu = 3, .user = 1, .nice = 2, .system = 3, .idle = 4 } } },
    { "columns past ten ignored", IN(AGG "cpu0 1 2 3 4 5 6 7 8 9 10 11 x " U64OVER "\n"), 4, AGENT_OK, 0, 1,
      { { .present = CPU_ALL, .user = 1, .nice = 2, .system = 3, .idle = 4, .iowait = 5, .irq = 6,
          .softirq = 7, .steal = 8, .guest = 9, .guest_nice = 10 } } },
    { "largest number, leading zeros", IN(AGG "cpu00000000000000000000000000001 1 2 3 4\ncpu65535 0 0 0 0\n"),
      4, AGENT_OK, 0, 2,
      { { .present = MASK(4), .cpu = 1, .user = 1, .nice = 2, .system = 3, .idle = 4 },
        { .present = MASK(4), .cpu = 65535 } } },
    { "number too large", IN(AGG "cpu65536 1 2 3 4\n"), 4, AGENT_EFORMAT, 2, 0, { { 0 } } },
    { "number of 25 digits", IN(AGG "cpu1000000000000000000000001 1 2 3 4\n"), 4, AGENT_EFORMAT, 2, 0,
      { { 0 } } },
    { "repeated", IN(AGG "cpu2 1 2 3 4\ncpu2 1 2 3 4\n"), 4, AGENT_EFORMAT, 3, 1, { { 0 } } },
    { "descending", IN(AGG "cpu2 1 2 3 4\ncpu1 1 2 3 4\n"), 4, AGENT_EFORMAT, 3, 1, { { 0 } } },
    { "3 columns", IN(AGG "cpu0 1 2 3\n"), 4, AGENT_EFORMAT, 2, 0, { { 0 } } },
    { "key alone", IN(AGG "cpu0\n"), 4, AGENT_EFORMAT, 2, 0, { { 0 } } },
    { "column count before counters", IN(AGG "cpu0 " U64OVER " x\n"), 4, AGENT_EFORMAT, 2, 0, { { 0 } } },
    { "first column error", IN(AGG "cpu0 1 " U64OVER " x 4\n"), 4, AGENT_ERANGE, 2, 0, { { 0 } } },
    { "not per-CPU keys", IN(AGG "cpu0x 1\ncpu-1 1\nCPU0 1\ncpu+1 1\n"), 4, AGENT_OK, 0, 0, { { 0 } } },
    { "EROWS with a small cap", IN(AGG "cpu0 1 2 3 4\n\ncpu1 1 2 3 4\ncpu2 x\n"), 2,
      AGENT_EROWS, 5, 2, { { 0 } } },
    { "EROWS with no room", IN("\ncpu0 1 2 3 4\n"), 0, AGENT_EROWS, 2, 0, { { 0 } } },
    { "EROWS before the order check", IN(AGG "cpu5 1 2 3 4\ncpu1 1 2 3 4\n"), 1, AGENT_EROWS, 3, 1,
      { { 0 } } },
    { "error before EROWS", IN("cpu0 1\ncpu1 1 2 3 4\n" AGG), 1, AGENT_EFORMAT, 1, 0, { { 0 } } },
    { "exactly cap rows", IN(AGG "cpu0 1 2 3 4\ncpu1 5 6 7 8\n"), 2, AGENT_OK, 0, 2,
      { { .present = MASK(4), .cpu = 0, .user = 1, .nice = 2, .system = 3, .idle = 4 },
        { .present = MASK(4), .cpu = 1, .user = 5, .nice = 6, .system = 7, .idle = 8 } } },
    { "EMISSING after rows", IN("cpu0 1 2 3 4\n"), 2, AGENT_EMISSING, 0, 1, { { 0 } } },
};

struct meminfo_case {
    const char *name;
    const char *in;
    size_t len;
    int rc;
    size_t line;
    struct agent_meminfo want;
};

#define MEMINFO_ALL MASK(AGENT_MEMINFO_NFIELDS)

static const struct meminfo_case meminfo_cases[] = {
    { "empty", IN(""), AGENT_EMISSING, 0, { 0 } },
    { "valid", IN("MemTotal:       24684096 kB\n"
                  "MemFree:        24003800 kB\n"
                  "MemAvailable:   24324376 kB\n"
                  "Buffers:            7728 kB\n"
                  "Cached:           494212 kB\n"
                  "SwapCached:            1 kB\n"
                  "Active:           206272 kB\n"
                  "Inactive:         299708 kB\n"
                  "Active(anon):       1532 kB\n"
                  "Inactive(anon):    11296 kB\n"
                  "Active(file):     204740 kB\n"
                  "Inactive(file):   288412 kB\n"
                  "Unevictable:           0 kB\n"
                  "SwapTotal:             2 kB\n"
                  "SwapFree:              3 kB\n"
                  "Dirty:              1044 kB\n"
                  "Writeback:             4 kB\n"
                  "AnonPages:          3960 kB\n"
                  "Shmem:              8788 kB\n"
                  "KReclaimable:      67032 kB\n"
                  "Slab:              89512 kB\n"
                  "SReclaimable:      67032 kB\n"
                  "SUnreclaim:        22480 kB\n"
                  "HugePages_Total:       0\n"
                  "Hugepagesize:       2048 kB\n"),
      AGENT_OK, 0,
      { .present = MEMINFO_ALL, .mem_total_kb = 24684096, .mem_free_kb = 24003800,
        .mem_available_kb = 24324376, .buffers_kb = 7728, .cached_kb = 494212,
        .swap_cached_kb = 1, .active_kb = 206272, .inactive_kb = 299708,
        .active_file_kb = 204740, .inactive_file_kb = 288412, .swap_total_kb = 2,
        .swap_free_kb = 3, .dirty_kb = 1044, .writeback_kb = 4, .shmem_kb = 8788,
        .slab_kb = 89512, .sreclaimable_kb = 67032, .sunreclaim_kb = 22480 } },
    { "without MemAvailable (before 3.14)", IN("MemTotal: 100 kB\nMemFree: 50 kB\nCached: 7 kB\n"),
      AGENT_OK, 0,
      { .present = B(AGENT_MEMINFO_MEM_TOTAL) | B(AGENT_MEMINFO_MEM_FREE) | B(AGENT_MEMINFO_CACHED),
        .mem_total_kb = 100, .mem_free_kb = 50, .cached_kb = 7 } },
    { "no trailing newline", IN("MemTotal: 5 kB"), AGENT_OK, 0,
      { .present = B(AGENT_MEMINFO_MEM_TOTAL), .mem_total_kb = 5 } },
    { "no space after colon, no unit", IN("MemTotal:123"), AGENT_OK, 0,
      { .present = B(AGENT_MEMINFO_MEM_TOTAL), .mem_total_kb = 123 } },
    { "not enough fields", IN("MemTotal:\n"), AGENT_EFORMAT, 1, { 0 } },
    { "only blanks after colon", IN("MemTotal: \t\r\n"), AGENT_EFORMAT, 1, { 0 } },
    { "unit where the value should be", IN("MemTotal: kB\n"), AGENT_EFORMAT, 1, { 0 } },
    { "missing MemTotal", IN("MemFree: 1 kB\nMemAvailable: 2 kB\n"), AGENT_EMISSING, 0, { 0 } },
    { "key is not trimmed", IN(" MemTotal: x\nMemTotal : y\nMemTotal: 6\n"), AGENT_OK, 0,
      { .present = B(AGENT_MEMINFO_MEM_TOTAL), .mem_total_kb = 6 } },
    { "key ends at the first colon", IN("MemTotal:: 5\n"), AGENT_EFORMAT, 1, { 0 } },
    { "line without colon skipped", IN("garbage here\nMemTotal: 1\n"), AGENT_OK, 0,
      { .present = B(AGENT_MEMINFO_MEM_TOTAL), .mem_total_kb = 1 } },
    { "unknown key not looked at", IN("Foo: x\nActive(anon): " U64OVER "\nMemTotal: 1\n"),
      AGENT_OK, 0, { .present = B(AGENT_MEMINFO_MEM_TOTAL), .mem_total_kb = 1 } },
    { "duplicate", IN("MemTotal: 1\nMemTotal: 2\n"), AGENT_EFORMAT, 2, { 0 } },
    { "duplicate before counter check", IN("MemTotal: 1\nMemTotal: " U64OVER "\n"),
      AGENT_EFORMAT, 2, { 0 } },
    { "huge counter 2^64-1", IN("MemTotal: " U64MAX " kB\n"), AGENT_OK, 0,
      { .present = B(AGENT_MEMINFO_MEM_TOTAL), .mem_total_kb = UINT64_MAX } },
    { "huge counter 2^64", IN("MemFree: 1\nMemTotal: " U64OVER " kB\n"), AGENT_ERANGE, 2, { 0 } },
    { "21-digit counter with leading zeros", IN("MemTotal: 000000000000000000042 kB\n"), AGENT_OK, 0,
      { .present = B(AGENT_MEMINFO_MEM_TOTAL), .mem_total_kb = 42 } },
    { "NUL in a key", IN("Mem\0Total: x\nMemTotal: 1\n"), AGENT_OK, 0,
      { .present = B(AGENT_MEMINFO_MEM_TOTAL), .mem_total_kb = 1 } },
    { "NUL in a value", IN("MemTotal: 5\0 kB\n"), AGENT_EFORMAT, 1, { 0 } },
    { "error before EMISSING", IN("MemFree: x\n"), AGENT_EFORMAT, 1, { 0 } },
    { "every key by name", IN("SUnreclaim: 18\nSReclaimable: 17\nSlab: 16\nShmem: 15\n"
                              "Writeback: 14\nDirty: 13\nSwapFree: 12\nSwapTotal: 11\n"
                              "Inactive(file): 10\nActive(file): 9\nInactive: 8\nActive: 7\n"
                              "SwapCached: 6\nCached: 5\nBuffers: 4\nMemAvailable: 3\n"
                              "MemFree: 2\nMemTotal: 1\n"),
      AGENT_OK, 0,
      { .present = MEMINFO_ALL, .mem_total_kb = 1, .mem_free_kb = 2, .mem_available_kb = 3,
        .buffers_kb = 4, .cached_kb = 5, .swap_cached_kb = 6, .active_kb = 7, .inactive_kb = 8,
        .active_file_kb = 9, .inactive_file_kb = 10, .swap_total_kb = 11, .swap_free_kb = 12,
        .dirty_kb = 13, .writeback_kb = 14, .shmem_kb = 15, .slab_kb = 16,
        .sreclaimable_kb = 17, .sunreclaim_kb = 18 } },
};

struct loadavg_case {
    const char *name;
    const char *in;
    size_t len;
    int rc;
    size_t line;
    struct agent_loadavg want;
};

#define LOADAVG_ALL MASK(AGENT_LOADAVG_NFIELDS)

static const struct loadavg_case loadavg_cases[] = {
    { "empty", IN(""), AGENT_EFORMAT, 1, { 0 } },
    { "valid", IN("0.51 0.26 0.11 1/87 5772\n"), AGENT_OK, 0,
      { .present = LOADAVG_ALL, .load1 = 0.51, .load5 = 0.26, .load15 = 0.11,
        .runnable = 1, .threads = 87, .last_pid = 5772 } },
    { "no trailing newline", IN("10.00 2.5 0 3/4 5"), AGENT_OK, 0,
      { .present = LOADAVG_ALL, .load1 = 10.0, .load5 = 2.5, .load15 = 0.0,
        .runnable = 3, .threads = 4, .last_pid = 5 } },
    { "not enough fields", IN("0.51 0.26 0.11 1/87\n"), AGENT_EFORMAT, 1, { 0 } },
    { "field count before values", IN(U64OVER " x 0.1 1/2\n"), AGENT_EFORMAT, 1, { 0 } },
    { "blank line 1", IN("\n0.51 0.26 0.11 1/87 5772\n"), AGENT_EFORMAT, 1, { 0 } },
    { "only line 1 counts", IN("0.51 0.26 0.11 1/87 5772\ngarbage\n"), AGENT_OK, 0,
      { .present = LOADAVG_ALL, .load1 = 0.51, .load5 = 0.26, .load15 = 0.11,
        .runnable = 1, .threads = 87, .last_pid = 5772 } },
    { "later fields ignored", IN("1 2 3 4/5 6 x y\n"), AGENT_OK, 0,
      { .present = LOADAVG_ALL, .load1 = 1, .load5 = 2, .load15 = 3,
        .runnable = 4, .threads = 5, .last_pid = 6 } },
    { "15 digits", IN("12345678901234.5 0.00000000000001 999999999999999 1/1 1\n"), AGENT_OK, 0,
      { .present = LOADAVG_ALL, .load1 = 12345678901234.5, .load5 = 1e-14,
        .load15 = 999999999999999.0, .runnable = 1, .threads = 1, .last_pid = 1 } },
    { "16 digits", IN("1234567890123.456 0 0 1/1 1\n"), AGENT_ERANGE, 1, { 0 } },
    { "16 digits with leading zeros", IN("0.000000000000001 0 0 1/1 1\n"), AGENT_ERANGE, 1, { 0 } },
    { "shape before digit count", IN("12345678901234567.x 0 0 1/1 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "trailing dot", IN("1. 0 0 1/1 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "leading dot", IN("0 .5 0 1/1 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "two dots", IN("0 0 1.2.3 1/1 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "exponent", IN("1e5 0 0 1/1 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "sign", IN("-1.0 0 0 1/1 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "no slash", IN("0 0 0 12 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "empty runnable", IN("0 0 0 /2 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "empty threads", IN("0 0 0 2/ 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "two slashes", IN("0 0 0 1/2/3 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "runnable huge", IN("0 0 0 " U64OVER "/x 1\n"), AGENT_ERANGE, 1, { 0 } },
    { "threads 2^64-1", IN("0 0 0 0/" U64MAX " " U64MAX "\n"), AGENT_OK, 0,
      { .present = LOADAVG_ALL, .threads = UINT64_MAX, .last_pid = UINT64_MAX } },
    { "last pid huge", IN("0 0 0 1/1 " U64OVER "\n"), AGENT_ERANGE, 1, { 0 } },
    { "first error left to right", IN("0 x 1234567890123456 1/1 1\n"), AGENT_EFORMAT, 1, { 0 } },
    { "NUL inside", IN("0 0 0\0 1/1 1\n"), AGENT_EFORMAT, 1, { 0 } },
};

struct uptime_case {
    const char *name;
    const char *in;
    size_t len;
    int rc;
    size_t line;
    struct agent_uptime want;
};

static const struct uptime_case uptime_cases[] = {
    { "empty", IN(""), AGENT_EFORMAT, 1, { 0 } },
    { "valid", IN("502.32 887.82\n"), AGENT_OK, 0,
      { .present = MASK(2), .uptime_seconds = 502.32, .idle_seconds = 887.82 } },
    { "no trailing newline", IN("1 0.5"), AGENT_OK, 0,
      { .present = MASK(2), .uptime_seconds = 1.0, .idle_seconds = 0.5 } },
    { "not enough fields", IN("502.32\n"), AGENT_EFORMAT, 1, { 0 } },
    { "field count before values", IN("1234567890123456\n"), AGENT_EFORMAT, 1, { 0 } },
    { "bad idle", IN("1.5 x\n"), AGENT_EFORMAT, 1, { 0 } },
    { "16 digits", IN("1 1234567890.123456\n"), AGENT_ERANGE, 1, { 0 } },
    { "later fields ignored", IN("3.25 4.75 x\n"), AGENT_OK, 0,
      { .present = MASK(2), .uptime_seconds = 3.25, .idle_seconds = 4.75 } },
    { "only line 1 counts", IN("1 2\n3\n"), AGENT_OK, 0,
      { .present = MASK(2), .uptime_seconds = 1.0, .idle_seconds = 2.0 } },
    { "line 2 does not count", IN("1\n2 3\n"), AGENT_EFORMAT, 1, { 0 } },
    { "NUL inside", IN("1\0 2\n"), AGENT_EFORMAT, 1, { 0 } },
    { "CRLF", IN("7.5 8.25\r\n"), AGENT_OK, 0,
      { .present = MASK(2), .uptime_seconds = 7.5, .idle_seconds = 8.25 } },
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void test_scalars(struct ctx *t)
{
    size_t i;

    for (i = 0; i < COUNT(stat_cases); i++) {
        const struct stat_case *c = &stat_cases[i];
        run_scalar(t, "stat", c->name, p_stat, sizeof c->want, c->in, c->len, c->rc, c->line, &c->want);
    }
    for (i = 0; i < COUNT(meminfo_cases); i++) {
        const struct meminfo_case *c = &meminfo_cases[i];
        run_scalar(t, "meminfo", c->name, p_meminfo, sizeof c->want, c->in, c->len, c->rc, c->line, &c->want);
    }
    for (i = 0; i < COUNT(loadavg_cases); i++) {
        const struct loadavg_case *c = &loadavg_cases[i];
        run_scalar(t, "loadavg", c->name, p_loadavg, sizeof c->want, c->in, c->len, c->rc, c->line, &c->want);
    }
    for (i = 0; i < COUNT(uptime_cases); i++) {
        const struct uptime_case *c = &uptime_cases[i];
        run_scalar(t, "uptime", c->name, p_uptime, sizeof c->want, c->in, c->len, c->rc, c->line, &c->want);
    }
}

/* ------------------------------------------------------------------- rows */

#define DISK_ALL MASK(AGENT_DISK_NFIELDS)
#define DISK_OLD (B(AGENT_DISK_READS_COMPLETED) | B(AGENT_DISK_SECTORS_READ) | \
                  B(AGENT_DISK_WRITES_COMPLETED) | B(AGENT_DISK_SECTORS_WRITTEN))

struct disk_case {
    const char *name;
    const char *in;
    size_t len;
    size_t cap;
    int rc;
    size_t line;
    size_t count;   /* rows filled: on success, and on EROWS */
    struct agent_diskstats want[NROWS];
    const char *names[NROWS];   /* want[i].name_len bytes each */
};

#define S11 " 1 2 3 4 5 6 7 8 9 10 11"
#define S15 S11 " 12 13 14 15"
#define S17 S15 " 16 17"
#define W11 .reads_completed = 1, .reads_merged = 2, .sectors_read = 3, .read_time_ms = 4, \
            .writes_completed = 5, .writes_merged = 6, .sectors_written = 7, .write_time_ms = 8, \
            .io_in_progress = 9, .io_time_ms = 10, .weighted_io_time_ms = 11
#define W15 W11, .discards_completed = 12, .discards_merged = 13, .sectors_discarded = 14, \
            .discard_time_ms = 15
#define W17 W15, .flushes_completed = 16, .flush_time_ms = 17

static const struct disk_case disk_cases[] = {
    { "empty", IN(""), 16, AGENT_OK, 0, 0, { { 0 } }, { 0 } },
    { "blank lines", IN("\n  \n\t\n"), 16, AGENT_OK, 0, 0, { { 0 } }, { 0 } },
    { "empty with no room", IN(""), 0, AGENT_OK, 0, 0, { { 0 } }, { 0 } },
    { "not enough fields", IN("   8       0\n"), 16, AGENT_EFORMAT, 1, 0, { { 0 } }, { 0 } },
    { "7 fields (2.6 partition)", IN("   8    1 sda1 10 20 30 40\n"), 16, AGENT_OK, 0, 1,
      { { .present = DISK_OLD, .major = 8, .minor = 1, .reads_completed = 10, .sectors_read = 20,
          .writes_completed = 30, .sectors_written = 40, .name_len = 4 } },
      { "sda1" } },
    { "14 fields (before 4.18)", IN("   8    0 sda" S11 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = MASK(11), .major = 8, .name_len = 3, W11 } }, { "sda" } },
    { "18 fields (4.18 discards)", IN(" 259 0 nvme0n1" S15 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = MASK(15), .major = 259, .name_len = 7, W15 } }, { "nvme0n1" } },
    { "20 fields (5.5 flushes)", IN("253 3 dm-3" S17 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = DISK_ALL, .major = 253, .minor = 3, .name_len = 4, W17 } }, { "dm-3" } },
    { "more than 20 fields ignored", IN("1 2 x" S17 " 18 y z\n"), 16, AGENT_OK, 0, 1,
      { { .present = DISK_ALL, .major = 1, .minor = 2, .name_len = 1, W17 } }, { "x" } },
    { "3 fields", IN("8 0 sda\n"), 16, AGENT_EFORMAT, 1, 0, { { 0 } }, { 0 } },
    { "5 stats", IN("8 0 sda 1 2 3 4 5\n"), 16, AGENT_EFORMAT, 1, 0, { { 0 } }, { 0 } },
    { "10 stats", IN("8 0 sda 1 2 3 4 5 6 7 8 9 10\n"), 16, AGENT_EFORMAT, 1, 0, { { 0 } }, { 0 } },
    { "stats count before stats counters", IN("8 0 sda 1 2 3 " U64OVER " 5\n"), 16,
      AGENT_EFORMAT, 1, 0, { { 0 } }, { 0 } },
    { "name of 64 bytes", IN("8 0 " N64 " 1 2 3 4\n"), 16, AGENT_OK, 0, 1,
      { { .present = DISK_OLD, .major = 8, .reads_completed = 1, .sectors_read = 2,
          .writes_completed = 3, .sectors_written = 4, .name_len = 64 } },
      { N64 } },
    { "name of 65 bytes", IN("8 0 " N65 " 1 2 3 4\n"), 16, AGENT_ENAME, 1, 0, { { 0 } }, { 0 } },
    { "name before stats count", IN("8 0 " N65 " 1\n"), 16, AGENT_ENAME, 1, 0, { { 0 } }, { 0 } },
    { "minor before name", IN("8 " U64OVER " " N65 " 1\n"), 16, AGENT_ERANGE, 1, 0, { { 0 } }, { 0 } },
    { "major bad", IN("x8 0 sda 1 2 3 4\n"), 16, AGENT_EFORMAT, 1, 0, { { 0 } }, { 0 } },
    { "huge counters", IN("8 0 sda " U64MAX " 0 000000000000000000007 0\n"), 16, AGENT_OK, 0, 1,
      { { .present = DISK_OLD, .major = 8, .reads_completed = UINT64_MAX, .writes_completed = 7,
          .name_len = 3 } }, { "sda" } },
    { "counter 2^64", IN("8 0 sda 0 " U64OVER " 0 0\n"), 16, AGENT_ERANGE, 1, 0, { { 0 } }, { 0 } },
    { "NUL in name", IN("8 0 sd\0a 1 2 3 4\n"), 16, AGENT_OK, 0, 1,
      { { .present = DISK_OLD, .major = 8, .reads_completed = 1, .sectors_read = 2,
          .writes_completed = 3, .sectors_written = 4, .name_len = 4 } },
      { "sd\0a" } },
    { "NUL in counter", IN("8 0 sda 1 2\0 3 4\n"), 16, AGENT_EFORMAT, 1, 0, { { 0 } }, { 0 } },
    { "rows in order, duplicates kept, no trailing newline",
      IN("8 0 sda 1 2 3 4\n\n8 0 sda 5 6 7 8\n  7 1 loop1" S11), 16, AGENT_OK, 0, 3,
      { { .present = DISK_OLD, .major = 8, .reads_completed = 1, .sectors_read = 2,
          .writes_completed = 3, .sectors_written = 4, .name_len = 3 },
        { .present = DISK_OLD, .major = 8, .reads_completed = 5, .sectors_read = 6,
          .writes_completed = 7, .sectors_written = 8, .name_len = 3 },
        { .present = MASK(11), .major = 7, .minor = 1, .name_len = 5, W11 } },
      { "sda", "sda", "loop1" } },
    { "error line counts blank lines", IN("8 0 sda 1 2 3 4\n\n\n8 0 sdb 1\n"), 16,
      AGENT_EFORMAT, 4, 1, { { 0 } }, { 0 } },
    { "EROWS with a small cap", IN("8 0 a 1 2 3 4\n\n8 1 b 1 2 3 4\n8 2 c x\n"), 2,
      AGENT_EROWS, 4, 2, { { 0 } }, { 0 } },
    { "EROWS with no room", IN("\n8 0 a 1 2 3 4\n"), 0, AGENT_EROWS, 2, 0, { { 0 } }, { 0 } },
    { "error before EROWS", IN("8 0 a 1\n8 1 b 1 2 3 4\n"), 1, AGENT_EFORMAT, 1, 0, { { 0 } }, { 0 } },
    { "exactly cap rows", IN("8 0 a 1 2 3 4\n8 1 b 1 2 3 4\n"), 2, AGENT_OK, 0, 2,
      { { .present = DISK_OLD, .major = 8, .reads_completed = 1, .sectors_read = 2,
          .writes_completed = 3, .sectors_written = 4, .name_len = 1 },
        { .present = DISK_OLD, .major = 8, .minor = 1, .reads_completed = 1, .sectors_read = 2,
          .writes_completed = 3, .sectors_written = 4, .name_len = 1 } },
      { "a", "b" } },
};

struct net_case {
    const char *name;
    const char *in;
    size_t len;
    size_t cap;
    int rc;
    size_t line;
    size_t count;
    struct agent_netdev want[NROWS];
    const char *names[NROWS];
};

#define HDR "Inter-|   Receive                                                |  Transmit\n" \
            " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
#define C16 " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16"
#define Z16 " 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
#define NET_ALL MASK(AGENT_NETDEV_NFIELDS)
#define V16 .rx_bytes = 1, .rx_packets = 2, .rx_errs = 3, .rx_drop = 4, .rx_fifo = 5, \
            .rx_frame = 6, .rx_compressed = 7, .rx_multicast = 8, .tx_bytes = 9, \
            .tx_packets = 10, .tx_errs = 11, .tx_drop = 12, .tx_fifo = 13, .tx_colls = 14, \
            .tx_carrier = 15, .tx_compressed = 16

static const struct net_case net_cases[] = {
    { "empty", IN(""), 16, AGENT_OK, 0, 0, { { 0 } }, { 0 } },
    { "headers only", IN(HDR), 16, AGENT_OK, 0, 0, { { 0 } }, { 0 } },
    { "headers not looked at", IN("x\0:::\n" U64OVER ":\n  eth0:" C16 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = NET_ALL, .name_len = 4, V16 } }, { "eth0" } },
    { "one header line", IN("only a header"), 16, AGENT_OK, 0, 0, { { 0 } }, { 0 } },
    { "valid", IN(HDR "    lo:    3193      29    0    0    0     0          0         0     3193      29    0    0    0     0       0          0\n"
                  "  eth0:" C16 "\n"),
      16, AGENT_OK, 0, 2,
      { { .present = NET_ALL, .name_len = 2, .rx_bytes = 3193, .rx_packets = 29, .tx_bytes = 3193,
          .tx_packets = 29 },
        { .present = NET_ALL, .name_len = 4, V16 } },
      { "lo", "eth0" } },
    { "alias name team0:1:", IN(HDR "team0:1:" C16 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = NET_ALL, .name_len = 7, V16 } }, { "team0:1" } },
    { "eth1:18446744073709551615", IN(HDR "  eth1:" U64MAX Z16 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = NET_ALL, .name_len = 4, .rx_bytes = UINT64_MAX } }, { "eth1" } },
    { "eth1:18446744073709551616", IN(HDR "  eth1:" U64OVER Z16 "\n"), 16, AGENT_ERANGE, 3, 0,
      { { 0 } }, { 0 } },
    { "21-digit counter with leading zeros", IN(HDR "e:000000000000000000009" Z16 "\n"), 16,
      AGENT_OK, 0, 1, { { .present = NET_ALL, .name_len = 1, .rx_bytes = 9 } }, { "e" } },
    { "no colon", IN(HDR "  eth0" C16 "\n"), 16, AGENT_EFORMAT, 3, 0, { { 0 } }, { 0 } },
    { "empty name", IN(HDR " \t :" C16 "\n"), 16, AGENT_ENAME, 3, 0, { { 0 } }, { 0 } },
    { "name before field count", IN(HDR ":\n"), 16, AGENT_ENAME, 3, 0, { { 0 } }, { 0 } },
    { "name of 64 bytes", IN(HDR "  " N64 " :" C16 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = NET_ALL, .name_len = 64, V16 } }, { N64 } },
    { "name of 65 bytes", IN(HDR N65 ":" C16 "\n"), 16, AGENT_ENAME, 3, 0, { { 0 } }, { 0 } },
    { "inner white space kept", IN(HDR " a b\t:" C16 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = NET_ALL, .name_len = 3, V16 } }, { "a b" } },
    { "name ends at the last colon", IN(HDR "eth0: 1 2 :" C16 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = NET_ALL, .name_len = 9, V16 } }, { "eth0: 1 2" } },
    { "NUL in name", IN(HDR "e\0h:" C16 "\n"), 16, AGENT_OK, 0, 1,
      { { .present = NET_ALL, .name_len = 3, V16 } }, { "e\0h" } },
    { "NUL in counter", IN(HDR "eth0:" C16 "\0\n"), 16, AGENT_EFORMAT, 3, 0, { { 0 } }, { 0 } },
    { "not enough fields", IN(HDR "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15\n"), 16,
      AGENT_EFORMAT, 3, 0, { { 0 } }, { 0 } },
    { "field count before counters", IN(HDR "eth0: " U64OVER " x\n"), 16, AGENT_EFORMAT, 3, 0,
      { { 0 } }, { 0 } },
    { "more than 16 fields ignored", IN(HDR "eth0:" C16 " x " U64OVER "\n"), 16, AGENT_OK, 0, 1,
      { { .present = NET_ALL, .name_len = 4, V16 } }, { "eth0" } },
    { "first counter error left to right", IN(HDR "eth0: 1 x" U64OVER " " U64OVER " 5 6 7 8 9 10 11 12 13 14 15 16\n"),
      16, AGENT_EFORMAT, 3, 0, { { 0 } }, { 0 } },
    { "no trailing newline, CRLF", IN(HDR "eth0:" C16 "\r\n\r\nlo:" Z16), 16, AGENT_OK, 0, 2,
      { { .present = NET_ALL, .name_len = 4, V16 }, { .present = NET_ALL, .name_len = 2 } },
      { "eth0", "lo" } },
    { "EROWS with a small cap", IN(HDR "a:" Z16 "\nb:" Z16 "\n\nc:\n"), 2, AGENT_EROWS, 6, 2,
      { { 0 } }, { 0 } },
    { "EROWS with no room", IN(HDR "a:" Z16 "\n"), 0, AGENT_EROWS, 3, 0, { { 0 } }, { 0 } },
};

/* Ascending CPU numbers below AGENT_MAX_CPUS, 4 to 10 columns each, the
 * absent ones 0. */
static int rows_invariants_cpu(const struct agent_cpu *r, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        uint64_t p = r[i].present;

        if (r[i].cpu >= AGENT_MAX_CPUS || (i > 0 && r[i].cpu <= r[i - 1].cpu))
            return 0;
        if (p != MASK(4) && p != MASK(5) && p != MASK(6) && p != MASK(7) && p != MASK(8)
            && p != MASK(9) && p != CPU_ALL)
            return 0;
        if ((!(p & B(AGENT_CPU_GUEST_NICE)) && r[i].guest_nice) || (!(p & B(AGENT_CPU_IOWAIT)) && r[i].iowait))
            return 0;
    }
    return 1;
}

static int rows_invariants_disk(const struct agent_diskstats *r, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        if (r[i].name_len < 1 || r[i].name_len > AGENT_NAME_MAX)
            return 0;
        for (j = r[i].name_len; j < AGENT_NAME_MAX; j++)
            if (r[i].name[j] != 0)
                return 0;
        if (r[i].present & ~DISK_ALL)
            return 0;
    }
    return 1;
}

static int rows_invariants_net(const struct agent_netdev *r, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        if (r[i].name_len < 1 || r[i].name_len > AGENT_NAME_MAX)
            return 0;
        for (j = r[i].name_len; j < AGENT_NAME_MAX; j++)
            if (r[i].name[j] != 0)
                return 0;
        if (r[i].present != NET_ALL)
            return 0;
    }
    return 1;
}

static void test_rows(struct ctx *t)
{
    enum { ROOM = 32 };
    struct agent_diskstats drows[ROOM], dwant;
    struct agent_netdev nrows[ROOM], nwant;
    struct agent_cpu crows[ROOM];
    struct agent_stat st;
    size_t i, k;

    for (i = 0; i < COUNT(stat_rows_cases); i++) {
        const struct stat_rows_case *c = &stat_rows_cases[i];
        size_t count = 999, line = 999;
        char *buf = dup_exact(c->in, c->len);
        int rc;

        memset(crows, 0xa5, sizeof crows);
        rc = agent_parse_stat(buf, c->len, &st, crows, c->cap, &count, &line);
        check_rc(t, "stat rows", c->name, rc, line, c->rc, c->line);
        if (rc == c->rc && (rc == AGENT_OK || rc == AGENT_EROWS))
            check(t, count == c->count, "stat rows", c->name, "row count");
        if (rc == AGENT_OK && c->rc == AGENT_OK && count == c->count) {
            check(t, line == 0, "stat rows", c->name, "err_line not 0 on success");
            check(t, st.cpu_count == count && !(st.present & B(AGENT_STAT_CPU_COUNT)) == !count,
                  "stat rows", c->name, "cpu_count is not the row count");
            check(t, rows_invariants_cpu(crows, count), "stat rows", c->name, "row invariants");
            for (k = 0; k < count && k < NROWS; k++)
                check(t, memcmp(&crows[k], &c->want[k], sizeof crows[k]) == 0, "stat rows", c->name,
                      "row differs from the expected one");
        }
        if (c->cap < ROOM)
            check(t, ((unsigned char *)&crows[c->cap])[0] == 0xa5, "stat rows", c->name,
                  "wrote past cap");
        free(buf);
    }

    for (i = 0; i < COUNT(disk_cases); i++) {
        const struct disk_case *c = &disk_cases[i];
        size_t count = 999, line = 999;
        char *buf = dup_exact(c->in, c->len);
        int rc;

        memset(drows, 0xa5, sizeof drows);
        rc = agent_parse_diskstats(buf, c->len, drows, c->cap, &count, &line);
        check_rc(t, "diskstats", c->name, rc, line, c->rc, c->line);
        if (rc == c->rc && (rc == AGENT_OK || rc == AGENT_EROWS))
            check(t, count == c->count, "diskstats", c->name, "row count");
        if (rc == AGENT_OK && c->rc == AGENT_OK && count == c->count) {
            check(t, line == 0, "diskstats", c->name, "err_line not 0 on success");
            check(t, rows_invariants_disk(drows, count), "diskstats", c->name, "row invariants");
            for (k = 0; k < count && k < NROWS; k++) {
                dwant = c->want[k];
                memcpy(dwant.name, c->names[k], dwant.name_len);
                check(t, memcmp(&drows[k], &dwant, sizeof dwant) == 0, "diskstats", c->name,
                      "row differs from the expected one");
            }
        }
        /* Rows past cap are never written. */
        if (c->cap < ROOM)
            check(t, ((unsigned char *)&drows[c->cap])[0] == 0xa5, "diskstats", c->name,
                  "wrote past cap");
        free(buf);
    }
    for (i = 0; i < COUNT(net_cases); i++) {
        const struct net_case *c = &net_cases[i];
        size_t count = 999, line = 999;
        char *buf = dup_exact(c->in, c->len);
        int rc;

        memset(nrows, 0xa5, sizeof nrows);
        rc = agent_parse_netdev(buf, c->len, nrows, c->cap, &count, &line);
        check_rc(t, "netdev", c->name, rc, line, c->rc, c->line);
        if (rc == c->rc && (rc == AGENT_OK || rc == AGENT_EROWS))
            check(t, count == c->count, "netdev", c->name, "row count");
        if (rc == AGENT_OK && c->rc == AGENT_OK && count == c->count) {
            check(t, line == 0, "netdev", c->name, "err_line not 0 on success");
            check(t, rows_invariants_net(nrows, count), "netdev", c->name, "row invariants");
            for (k = 0; k < count && k < NROWS; k++) {
                nwant = c->want[k];
                memcpy(nwant.name, c->names[k], nwant.name_len);
                check(t, memcmp(&nrows[k], &nwant, sizeof nwant) == 0, "netdev", c->name,
                      "row differs from the expected one");
            }
        }
        if (c->cap < ROOM)
            check(t, ((unsigned char *)&nrows[c->cap])[0] == 0xa5, "netdev", c->name,
                  "wrote past cap");
        free(buf);
    }
}

/* --------------------------------------------- prefixes and mutations */

enum { SRC_STAT, SRC_MEMINFO, SRC_LOADAVG, SRC_UPTIME, SRC_DISK, SRC_NET, SRC_N };
enum { ROWS_ROOM = 64 };

static const char *const src_name[SRC_N] = {
    "stat", "meminfo", "loadavg", "uptime", "diskstats", "netdev"
};

/* Lines in buf as the grammar counts them. */
static size_t count_lines(const char *buf, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        if (buf[i] == '\n')
            n++;
    if (len && buf[len - 1] != '\n')
        n++;
    return n;
}

/* Parse in with one source twice, into outputs pre-filled with different
 * garbage: same status, same line, and on success the same bytes (so every
 * byte of the result is written, names zero-padded) and the invariants. */
static void robust_one(struct ctx *t, int src, const char *what, const char *in, size_t len)
{
    static const unsigned char fill[2] = { 0x00, 0xff };
    union {
        union any_scalar s;
        struct agent_diskstats d[ROWS_ROOM];
        struct agent_netdev n[ROWS_ROOM];
    } out[2];
    struct agent_cpu crows[2][ROWS_ROOM];
    size_t line[2], count[2] = { 0, 0 };
    int rc[2], pass, ok = 1;
    char *buf = dup_exact(in, len);
    size_t lines = count_lines(in, len);
    size_t size = 0;

    for (pass = 0; pass < 2; pass++) {
        memset(&out[pass], fill[pass], sizeof out[pass]);
        memset(crows[pass], fill[pass], sizeof crows[pass]);
        switch (src) {
        case SRC_STAT:
            rc[pass] = agent_parse_stat(buf, len, &out[pass].s.stat, crows[pass], ROWS_ROOM,
                                        &count[pass], &line[pass]);
            size = sizeof(struct agent_stat);
            break;
        case SRC_MEMINFO:
            rc[pass] = agent_parse_meminfo(buf, len, &out[pass].s.meminfo, &line[pass]);
            size = sizeof(struct agent_meminfo);
            break;
        case SRC_LOADAVG:
            rc[pass] = agent_parse_loadavg(buf, len, &out[pass].s.loadavg, &line[pass]);
            size = sizeof(struct agent_loadavg);
            break;
        case SRC_UPTIME:
            rc[pass] = agent_parse_uptime(buf, len, &out[pass].s.uptime, &line[pass]);
            size = sizeof(struct agent_uptime);
            break;
        case SRC_DISK:
            rc[pass] = agent_parse_diskstats(buf, len, out[pass].d, ROWS_ROOM, &count[pass], &line[pass]);
            size = count[pass] * sizeof(struct agent_diskstats);
            break;
        default:
            rc[pass] = agent_parse_netdev(buf, len, out[pass].n, ROWS_ROOM, &count[pass], &line[pass]);
            size = count[pass] * sizeof(struct agent_netdev);
            break;
        }
    }
    if (rc[0] != rc[1] || line[0] != line[1] || count[0] != count[1])
        ok = 0;
    else if (rc[0] > 0 || rc[0] < AGENT_EIO || rc[0] == AGENT_ETRUNC || rc[0] == AGENT_EIO)
        ok = 0;
    else if (rc[0] == AGENT_OK && line[0] != 0)
        ok = 0;
    else if (rc[0] == AGENT_EMISSING && line[0] != 0)
        ok = 0;
    else if (rc[0] != AGENT_OK && rc[0] != AGENT_EMISSING
             && (line[0] < 1 || line[0] > (lines ? lines : 1)))
        ok = 0;
    else if (rc[0] == AGENT_OK && memcmp(&out[0], &out[1], size) != 0)
        ok = 0;
    else if (rc[0] == AGENT_OK && src == SRC_STAT
             && (memcmp(crows[0], crows[1], count[0] * sizeof crows[0][0]) != 0
                 || !rows_invariants_cpu(crows[0], count[0])
                 || out[0].s.stat.cpu_count != count[0]))
        ok = 0;
    else if (rc[0] == AGENT_OK && src == SRC_DISK && !rows_invariants_disk(out[0].d, count[0]))
        ok = 0;
    else if (rc[0] == AGENT_OK && src == SRC_NET && !rows_invariants_net(out[0].n, count[0]))
        ok = 0;
    else if (count[0] > ROWS_ROOM)
        ok = 0;
    if (!ok) {
        char msg[200];

        snprintf(msg, sizeof msg, "%s (len %zu): rc %s/%s line %zu/%zu count %zu/%zu",
                 what, len, rc_name(rc[0]), rc_name(rc[1]), line[0], line[1], count[0], count[1]);
        check(t, 0, "robust", src_name[src], msg);
    } else {
        t->run++;
    }
    free(buf);
}

static void prefixes(struct ctx *t, int src, const char *in, size_t len)
{
    size_t n;

    for (n = 0; n <= len; n++)
        robust_one(t, src, "prefix", in, n);
}

static void test_prefixes(struct ctx *t)
{
    size_t i;

    for (i = 0; i < COUNT(stat_cases); i++)
        prefixes(t, SRC_STAT, stat_cases[i].in, stat_cases[i].len);
    for (i = 0; i < COUNT(stat_rows_cases); i++)
        prefixes(t, SRC_STAT, stat_rows_cases[i].in, stat_rows_cases[i].len);
    for (i = 0; i < COUNT(meminfo_cases); i++)
        prefixes(t, SRC_MEMINFO, meminfo_cases[i].in, meminfo_cases[i].len);
    for (i = 0; i < COUNT(loadavg_cases); i++)
        prefixes(t, SRC_LOADAVG, loadavg_cases[i].in, loadavg_cases[i].len);
    for (i = 0; i < COUNT(uptime_cases); i++)
        prefixes(t, SRC_UPTIME, uptime_cases[i].in, uptime_cases[i].len);
    for (i = 0; i < COUNT(disk_cases); i++)
        prefixes(t, SRC_DISK, disk_cases[i].in, disk_cases[i].len);
    for (i = 0; i < COUNT(net_cases); i++)
        prefixes(t, SRC_NET, net_cases[i].in, net_cases[i].len);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* Bytes that matter to the grammar, and a few that do not. */
static const char alphabet[] = "0123456789 \t\r\v\f\n:/.\0x-+e\xff";

static void mutate_many(struct ctx *t, int src, const char *base, size_t len, uint64_t seed, int iters)
{
    enum { MAXLEN = 1024 };
    char buf[MAXLEN];
    uint64_t s = seed;
    int it;

    if (len > MAXLEN / 2)
        len = MAXLEN / 2;
    for (it = 0; it < iters; it++) {
        size_t n = len;
        int m, muts = 1 + (int)(xorshift(&s) % 4);

        memcpy(buf, base, len);
        for (m = 0; m < muts; m++) {
            uint64_t r = xorshift(&s);
            size_t pos = n ? (size_t)(r >> 8) % n : 0;
            char c = alphabet[(r >> 40) % (sizeof alphabet - 1)];

            switch (r % 5) {
            case 0:
            case 1:
                if (n)
                    buf[pos] = c;
                break;
            case 2:
                if (n < MAXLEN) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = c;
                    n++;
                }
                break;
            case 3:
                if (n) {
                    memmove(buf + pos, buf + pos + 1, n - pos - 1);
                    n--;
                }
                break;
            default:
                /* Lengthen a digit run, to reach the 2^64 boundary. */
                if (n + 8 <= MAXLEN) {
                    memmove(buf + pos + 8, buf + pos, n - pos);
                    memcpy(buf + pos, r & 32 ? "99999999" : "00000000", 8);
                    n += 8;
                }
                break;
            }
        }
        robust_one(t, src, "mutation", buf, n);
    }
}

/* The index of the case called name in a case table. */
#define FIND(table, nm) find_case((const char *)(table), sizeof((table)[0]), COUNT(table), nm)

static size_t find_case(const char *table, size_t size, size_t n, const char *name)
{
    size_t i;

    /* Every case struct starts with its name. */
    for (i = 0; i < n; i++) {
        const char *const *cname = (const char *const *)(const void *)(table + i * size);

        if (strcmp(*cname, name) == 0)
            return i;
    }
    fprintf(stderr, "no case named %s\n", name);
    exit(2);
}

static void test_mutations(struct ctx *t)
{
    enum { ITERS = 3000 };
    const struct stat_case *st = &stat_cases[FIND(stat_cases, "valid")];
    const struct meminfo_case *mi = &meminfo_cases[FIND(meminfo_cases, "valid")];
    const struct loadavg_case *la = &loadavg_cases[FIND(loadavg_cases, "valid")];
    const struct uptime_case *up = &uptime_cases[FIND(uptime_cases, "valid")];
    const struct disk_case *dk = &disk_cases[FIND(disk_cases, "rows in order, duplicates kept, no trailing newline")];
    const struct net_case *nd = &net_cases[FIND(net_cases, "valid")];

    mutate_many(t, SRC_STAT, st->in, st->len, 0x9e3779b97f4a7c15u, ITERS);
    mutate_many(t, SRC_STAT, stat_rows_cases[FIND(stat_rows_cases, "rows")].in,
                stat_rows_cases[FIND(stat_rows_cases, "rows")].len, 0x2545f4914f6cdd1du, ITERS);
    mutate_many(t, SRC_MEMINFO, mi->in, mi->len, 0x1234567u, ITERS);
    mutate_many(t, SRC_LOADAVG, la->in, la->len, 0x7654321u, ITERS);
    mutate_many(t, SRC_UPTIME, up->in, up->len, 0xabcdefu, ITERS);
    mutate_many(t, SRC_DISK, dk->in, dk->len, 0x5555u, ITERS);
    mutate_many(t, SRC_NET, nd->in, nd->len, 0xaaaau, ITERS);
}

/* -------------------------------------------------------------- reading */

static int temp_file(const char *content, size_t len, char *path, size_t path_size)
{
    const char *dir = getenv("TMPDIR");
    int fd;

    snprintf(path, path_size, "%s/agent-test-XXXXXX", dir && *dir ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        exit(2);
    }
    if (len && write(fd, content, len) != (ssize_t)len) {
        perror("write");
        exit(2);
    }
    return fd;
}

static void test_read_fd(struct ctx *t)
{
    enum { FILE_LEN = 5000 };
    static char content[FILE_LEN];
    char small[16], exact[FILE_LEN], big[FILE_LEN * 2], path[4096];
    size_t len, i, count, line;
    int fd, rc, pipefd[2];
    struct agent_meminfo mi;
    struct agent_stat st;

    for (i = 0; i < FILE_LEN; i++)
        content[i] = (char)('a' + i % 26);
    fd = temp_file(content, FILE_LEN, path, sizeof path);

    rc = agent_read_fd(fd, small, sizeof small, &len);
    check(t, rc == AGENT_ETRUNC && len == sizeof small, "read_fd", "ETRUNC with a small buffer", rc_name(rc));
    check(t, memcmp(small, content, sizeof small) == 0, "read_fd", "ETRUNC keeps the head", "bytes differ");
    rc = agent_read_fd(fd, exact, FILE_LEN - 1, &len);
    check(t, rc == AGENT_ETRUNC && len == FILE_LEN - 1, "read_fd", "ETRUNC one byte short", rc_name(rc));
    rc = agent_read_fd(fd, exact, FILE_LEN, &len);
    check(t, rc == AGENT_OK && len == FILE_LEN, "read_fd", "exact fit (EOF probe)", rc_name(rc));
    check(t, memcmp(exact, content, FILE_LEN) == 0, "read_fd", "exact fit content", "bytes differ");
    /* The file offset is not used: a second read gives the whole file again. */
    rc = agent_read_fd(fd, big, sizeof big, &len);
    check(t, rc == AGENT_OK && len == FILE_LEN, "read_fd", "larger buffer", rc_name(rc));
    check(t, memcmp(big, content, FILE_LEN) == 0, "read_fd", "larger buffer content", "bytes differ");
    rc = agent_read_fd(fd, NULL, 0, &len);
    check(t, rc == AGENT_ETRUNC && len == 0, "read_fd", "zero cap on a non-empty file", rc_name(rc));
    close(fd);
    unlink(path);

    fd = temp_file("", 0, path, sizeof path);
    rc = agent_read_fd(fd, NULL, 0, &len);
    check(t, rc == AGENT_OK && len == 0, "read_fd", "zero cap on an empty file", rc_name(rc));
    rc = agent_read_fd(fd, small, sizeof small, &len);
    check(t, rc == AGENT_OK && len == 0, "read_fd", "empty file", rc_name(rc));
    close(fd);
    unlink(path);

    errno = 0;
    rc = agent_read_fd(-1, small, sizeof small, &len);
    check(t, rc == AGENT_EIO && errno == EBADF, "read_fd", "EIO on a bad fd, errno EBADF", rc_name(rc));
    fd = open(".", O_RDONLY);
    if (fd >= 0) {
        errno = 0;
        rc = agent_read_fd(fd, small, sizeof small, &len);
        check(t, rc == AGENT_EIO && errno == EISDIR, "read_fd", "EIO on a directory, errno EISDIR", rc_name(rc));
        close(fd);
    }
    if (pipe(pipefd) == 0) {
        errno = 0;
        rc = agent_read_fd(pipefd[0], small, sizeof small, &len);
        check(t, rc == AGENT_EIO && errno == ESPIPE, "read_fd", "EIO on a pipe, errno ESPIPE", rc_name(rc));
        close(pipefd[0]);
        close(pipefd[1]);
    }

    /* Loaders: read and parse in one call. */
    fd = temp_file(IN("MemTotal: 7 kB\nMemFree: 3 kB\n"), path, sizeof path);
    line = 99;
    rc = agent_load_meminfo(fd, small, sizeof small, &len, &mi, &line);
    check(t, rc == AGENT_ETRUNC && line == 0 && len == sizeof small, "load", "meminfo ETRUNC", rc_name(rc));
    rc = agent_load_meminfo(fd, big, sizeof big, &len, &mi, &line);
    check(t, rc == AGENT_OK && len == 29 && mi.mem_total_kb == 7 && mi.mem_free_kb == 3
             && mi.present == (B(AGENT_MEMINFO_MEM_TOTAL) | B(AGENT_MEMINFO_MEM_FREE)),
          "load", "meminfo", rc_name(rc));
    close(fd);
    unlink(path);

    fd = temp_file(IN("cpu 1 2 3\n"), path, sizeof path);
    rc = agent_load_stat(fd, big, sizeof big, &len, &st, NULL, 0, &count, &line);
    check(t, rc == AGENT_EFORMAT && line == 1, "load", "stat parse error passes through", rc_name(rc));
    close(fd);
    unlink(path);

    {
        struct agent_cpu crows[2];

        fd = temp_file(IN("cpu 1 2 3 4\ncpu0 1 2 3 4\ncpu1 1 2 3 4\ncpu2 5 6 7 8\n"), path, sizeof path);
        rc = agent_load_stat(fd, big, sizeof big, &len, &st, crows, 2, &count, &line);
        check(t, rc == AGENT_EROWS && count == 2 && line == 4, "load", "stat EROWS", rc_name(rc));
        rc = agent_parse_stat(big, len, &st, crows, 1, &count, &line);
        check(t, rc == AGENT_EROWS && count == 1 && line == 3, "load", "stat EROWS, parse again",
              rc_name(rc));
        rc = agent_load_stat(fd, small, sizeof small, &len, &st, crows, 2, &count, &line);
        check(t, rc == AGENT_ETRUNC && count == 0 && line == 0 && st.present == 0, "load", "stat ETRUNC",
              rc_name(rc));
        close(fd);
        unlink(path);
    }

    {
        struct agent_netdev nrows[2];
        struct agent_diskstats drows[2];

        fd = temp_file(IN(HDR "a:" Z16 "\nb:" Z16 "\nc:" Z16 "\n"), path, sizeof path);
        rc = agent_load_netdev(fd, big, sizeof big, &len, nrows, 2, &count, &line);
        check(t, rc == AGENT_EROWS && count == 2 && line == 5, "load", "netdev EROWS", rc_name(rc));
        rc = agent_load_netdev(fd, small, sizeof small, &len, nrows, 2, &count, &line);
        check(t, rc == AGENT_ETRUNC && count == 0 && line == 0, "load", "netdev ETRUNC", rc_name(rc));
        close(fd);
        unlink(path);

        fd = temp_file(IN("8 0 sda 1 2 3 4\n"), path, sizeof path);
        rc = agent_load_diskstats(fd, big, sizeof big, &len, drows, 2, &count, &line);
        check(t, rc == AGENT_OK && count == 1 && drows[0].sectors_written == 4, "load", "diskstats", rc_name(rc));
        rc = agent_load_diskstats(-1, big, sizeof big, &len, drows, 2, &count, &line);
        check(t, rc == AGENT_EIO && count == 0 && line == 0, "load", "diskstats EIO", rc_name(rc));
        close(fd);
        unlink(path);
    }
}

/* agent_read_fd against an injected pread: EINTR on every other call,
 * 1-byte and 7-byte reads, and EIO part-way (tests/c/fake_pread.c). */
static void test_read_fd_faults(struct ctx *t)
{
    enum { FILE_LEN = 3000 };
    static const struct {
        const char *name;
        int mode;
        size_t chunk;
    } modes[] = {
        { "EINTR", AGENT_TEST_PREAD_EINTR, 0 },
        { "1-byte reads", AGENT_TEST_PREAD_SHORT, 1 },
        { "7-byte reads and EINTR", AGENT_TEST_PREAD_SHORT | AGENT_TEST_PREAD_EINTR, 7 },
    };
    static char content[FILE_LEN];
    char buf[FILE_LEN + 10], path[4096], what[96];
    size_t len, i, m;
    int fd, rc;

    for (i = 0; i < FILE_LEN; i++)
        content[i] = (char)('A' + i % 23);
    fd = temp_file(content, FILE_LEN, path, sizeof path);
    for (m = 0; m < COUNT(modes); m++) {
        static const size_t caps[] = { FILE_LEN + 10, FILE_LEN, FILE_LEN - 1, 1 };
        size_t k;

        for (k = 0; k < COUNT(caps); k++) {
            int want = caps[k] < FILE_LEN ? AGENT_ETRUNC : AGENT_OK;
            size_t want_len = caps[k] < FILE_LEN ? caps[k] : FILE_LEN;

            memset(&agent_test_pread, 0, sizeof agent_test_pread);
            agent_test_pread.mode = modes[m].mode;
            agent_test_pread.max_chunk = modes[m].chunk;
            len = 12345;
            rc = agent_read_fd(fd, buf, caps[k], &len);
            agent_test_pread.mode = 0;
            snprintf(what, sizeof what, "%s, cap %zu: %s len %zu", modes[m].name, caps[k],
                     rc_name(rc), len);
            check(t, rc == want && len == want_len && memcmp(buf, content, want_len) == 0,
                  "read_fd_faults", what, "wrong status, length or bytes");
            if (modes[m].mode & AGENT_TEST_PREAD_EINTR)
                check(t, agent_test_pread.eintr > 0, "read_fd_faults", what, "no EINTR injected");
        }
    }

    /* EIO after part of the file: the status and errno of the failure, and
     * *len the bytes read before it. */
    memset(&agent_test_pread, 0, sizeof agent_test_pread);
    agent_test_pread.mode = AGENT_TEST_PREAD_SHORT | AGENT_TEST_PREAD_FAIL_AT;
    agent_test_pread.max_chunk = 100;
    agent_test_pread.fail_at = 1000;
    errno = 0;
    rc = agent_read_fd(fd, buf, sizeof buf, &len);
    check(t, rc == AGENT_EIO && errno == EIO && len == 1000, "read_fd_faults", "EIO part-way",
          rc_name(rc));
    /* EIO on the end-of-file probe of a buffer that the file fills exactly. */
    agent_test_pread.fail_at = FILE_LEN;
    errno = 0;
    rc = agent_read_fd(fd, buf, FILE_LEN, &len);
    check(t, rc == AGENT_EIO && errno == EIO && len == FILE_LEN, "read_fd_faults",
          "EIO on the end-of-file probe", rc_name(rc));
    agent_test_pread.mode = 0;
    close(fd);
    unlink(path);
}

/* This machine's own files, when there is a /proc: they must parse. */
static void test_live_proc(struct ctx *t)
{
    enum { BUF = 1 << 20, ROWS = 4096 };
    char *buf = malloc(BUF);
    struct agent_diskstats *drows = malloc(ROWS * sizeof *drows);
    struct agent_netdev *nrows = malloc(ROWS * sizeof *nrows);
    struct agent_cpu *crows = malloc(ROWS * sizeof *crows);
    struct agent_stat st;
    struct agent_meminfo mi;
    struct agent_loadavg la;
    struct agent_uptime up;
    size_t len, line, count;
    int fd, rc;

    if (!buf || !drows || !nrows || !crows) {
        perror("malloc");
        exit(2);
    }
#define LIVE(path, call, extra)                                               \
    do {                                                                      \
        fd = open(path, O_RDONLY);                                            \
        if (fd >= 0) {                                                        \
            rc = call;                                                        \
            check(t, rc == AGENT_OK && (extra), "live", path, rc_name(rc));   \
            close(fd);                                                        \
        }                                                                     \
    } while (0)
    LIVE("/proc/stat", agent_load_stat(fd, buf, BUF, &len, &st, crows, ROWS, &count, &line),
         (st.present & B(AGENT_STAT_CPU_IDLE)) && (st.present & B(AGENT_STAT_INTR)) && count > 0
         && rows_invariants_cpu(crows, count));
    LIVE("/proc/meminfo", agent_load_meminfo(fd, buf, BUF, &len, &mi, &line), mi.mem_total_kb > 0);
    LIVE("/proc/loadavg", agent_load_loadavg(fd, buf, BUF, &len, &la, &line), la.threads > 0);
    LIVE("/proc/uptime", agent_load_uptime(fd, buf, BUF, &len, &up, &line), up.uptime_seconds > 0);
    LIVE("/proc/diskstats", agent_load_diskstats(fd, buf, BUF, &len, drows, ROWS, &count, &line),
         rows_invariants_disk(drows, count));
    LIVE("/proc/net/dev", agent_load_netdev(fd, buf, BUF, &len, nrows, ROWS, &count, &line),
         count > 0 && rows_invariants_net(nrows, count));
#undef LIVE
    free(buf);
    free(drows);
    free(nrows);
    free(crows);
}

static void test_tune_malloc(struct ctx *t)
{
    int rc = agent_tune_malloc((size_t)4 << 20, (size_t)16 << 20, 1);

    /* Under a sanitizer's allocator mallopt may refuse: EIO is allowed. */
    check(t, rc == AGENT_OK || rc == AGENT_EMISSING || rc == AGENT_EIO, "tune_malloc", "valid",
          "unexpected status");
    rc = agent_tune_malloc((size_t)4 << 20, (size_t)16 << 20, 0);
    check(t, rc == AGENT_OK || rc == AGENT_EMISSING || rc == AGENT_EIO, "tune_malloc",
          "default arena count", "unexpected status");
    check(t, agent_tune_malloc((size_t)1 << 40, 0, 0) == AGENT_ERANGE
             || agent_tune_malloc((size_t)1 << 40, 0, 0) == AGENT_EMISSING,
          "tune_malloc", "threshold above INT_MAX", "not refused");
    check(t, agent_tune_malloc(0, 0, (size_t)1 << 40) == AGENT_ERANGE
             || agent_tune_malloc(0, 0, (size_t)1 << 40) == AGENT_EMISSING,
          "tune_malloc", "arena count above INT_MAX", "not refused");
    rc = agent_trim_malloc(0);
    check(t, rc == AGENT_OK || rc == AGENT_EMISSING, "trim_malloc", "valid", "unexpected status");
}

/* Write len bytes to dir/name (a fresh file). */
static void put_file(const char *dir, const char *name, const char *content, size_t len)
{
    char path[4096];
    int fd;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (len && write(fd, content, len) != (ssize_t)len)) {
        perror(path);
        exit(2);
    }
    close(fd);
}

static void test_read_files(struct ctx *t)
{
    enum { CAP = 8, N = 9 };
    /* Names packed back to back: "a" "eight888" "nine9999x" "sub" "fifo"
     * "gone" 255 x "n" (the longest name) 256 x "n" (one too long) "nu\0l". */
    static char names[4 + 8 + 9 + 3 + 4 + 4 + 255 + 256 + 4];
    static const size_t lens[N] = { 1, 8, 9, 3, 4, 4, 255, 256, 4 };
    char dir[] = "/tmp/agent-read-files.XXXXXX", path[4096], longname[256];
    struct agent_file_entry e[N], one;
    struct agent_dir_entry de[8];
    size_t done, off = 0, i, count, nlen, seen_long = 0;
    char *data, *dnames;
    int dirfd, rc;

    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    memset(longname, 'n', 255);
    longname[255] = '\0';
    memcpy(names, "a" "eight888" "nine9999x" "sub" "fifo" "gone", 29);
    memset(names + 29, 'n', 255 + 256);
    memcpy(names + 29 + 511, "nu\0l", 4);
    put_file(dir, "a", "1\n", 2);
    put_file(dir, "eight888", "12345678", 8);
    put_file(dir, "nine9999x", "123456789", 9);
    put_file(dir, longname, "long", 4);
    snprintf(path, sizeof path, "%s/sub", dir);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/fifo", dir);
    mkfifo(path, 0600);
    dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    for (i = 0; i < N; i++) {
        e[i] = (struct agent_file_entry){ .name_off = off, .name_len = lens[i] };
        off += lens[i];
    }

    /* Exactly N * CAP bytes of heap: ASan catches a byte written past. */
    data = malloc(N * CAP);
    rc = agent_read_files(dirfd, names, sizeof names, e, N, CAP, 0, data, N * CAP, &done);
    check(t, rc == AGENT_OK && done == N, "read_files", "all entries", rc_name(rc));
    check(t, e[0].status == AGENT_OK && e[0].data_len == 2 && memcmp(data + e[0].data_off, "1\n", 2) == 0,
          "read_files", "small file", "wrong entry");
    check(t, e[1].status == AGENT_OK && e[1].data_len == 8 && e[1].data_off == 2, "read_files",
          "exactly the cap", "wrong entry");
    check(t, e[2].status == AGENT_ETRUNC && e[2].data_len == 8
             && memcmp(data + e[2].data_off, "12345678", 8) == 0, "read_files", "one byte over the cap",
          "not ETRUNC with the head");
    check(t, e[3].status == AGENT_EIO && e[3].err == EISDIR, "read_files", "directory", "not EISDIR");
    check(t, e[4].status == AGENT_EIO && e[4].err == EINVAL && e[4].data_len == 0, "read_files",
          "FIFO refused without blocking", "not EINVAL");
    check(t, e[5].status == AGENT_EIO && e[5].err == ENOENT, "read_files", "vanished", "not ENOENT");
    check(t, e[6].status == AGENT_OK && e[6].data_len == 4, "read_files", "255-byte name", "not read");
    check(t, e[7].status == AGENT_EIO && e[7].err == ENAMETOOLONG, "read_files", "256-byte name",
          "not ENAMETOOLONG");
    check(t, e[8].status == AGENT_EIO && e[8].err == EINVAL, "read_files", "NUL inside a name",
          "not EINVAL");

    rc = agent_read_files(dirfd, names, sizeof names, e, N, CAP, AGENT_READ_ONCE, data, N * CAP, &done);
    check(t, rc == AGENT_OK && e[2].status == AGENT_OK && e[2].data_len == 8, "read_files",
          "read once: cut at the cap, not reported", rc_name(rc));

    /* The first two files take 2 + 8 bytes; 7 left is less than the cap:
     * ETRUNC before the third, two entries done. */
    rc = agent_read_files(dirfd, names, sizeof names, e, N, CAP, 0, data, 2 + 8 + CAP - 1, &done);
    check(t, rc == AGENT_ETRUNC && done == 2, "read_files", "data buffer too small", rc_name(rc));
    rc = agent_read_files(dirfd, names, sizeof names, e, N, CAP, 0, NULL, 0, &done);
    check(t, rc == AGENT_ETRUNC && done == 0, "read_files", "no data buffer", rc_name(rc));
    rc = agent_read_files(dirfd, names, sizeof names, e, 0, CAP, 0, NULL, 0, &done);
    check(t, rc == AGENT_OK && done == 0, "read_files", "no entries", rc_name(rc));
    one = (struct agent_file_entry){ .name_off = sizeof names - 1, .name_len = 2 };
    rc = agent_read_files(dirfd, names, sizeof names, &one, 1, CAP, 0, data, N * CAP, &done);
    check(t, rc == AGENT_ENAME && done == 0, "read_files", "name past the buffer", rc_name(rc));
    one = (struct agent_file_entry){ .name_off = UINT64_MAX, .name_len = 2 };
    rc = agent_read_files(dirfd, names, sizeof names, &one, 1, CAP, 0, data, N * CAP, &done);
    check(t, rc == AGENT_ENAME, "read_files", "offset wrapping around", rc_name(rc));
    free(data);

    /* The listing: 6 entries ("." and ".." left out) whose names take
     * 1 + 8 + 9 + 3 + 4 + 255 bytes. */
    nlen = 1 + 8 + 9 + 3 + 4 + 255;
    dnames = malloc(nlen);
    rc = agent_list_dir(dirfd, ".", 1, dnames, nlen, de, 6, &count, &off);
    check(t, rc == AGENT_OK && count == 6 && off == nlen, "list_dir", "every entry", rc_name(rc));
    for (i = 0; rc == AGENT_OK && i < count; i++) {
        if (de[i].name_len == 255 && memcmp(dnames + de[i].name_off, longname, 255) == 0)
            seen_long = de[i].d_type == DT_REG;
        if (de[i].name_len == 4 && memcmp(dnames + de[i].name_off, "fifo", 4) == 0)
            check(t, de[i].d_type == DT_FIFO, "list_dir", "FIFO type", "not DT_FIFO");
        if (de[i].name_len == 3 && memcmp(dnames + de[i].name_off, "sub", 3) == 0)
            check(t, de[i].d_type == DT_DIR, "list_dir", "directory type", "not DT_DIR");
    }
    check(t, seen_long, "list_dir", "255-byte name, a regular file", "missing");
    rc = agent_list_dir(dirfd, ".", 1, dnames, nlen - 1, de, 6, &count, &off);
    check(t, rc == AGENT_ETRUNC && count < 6, "list_dir", "names one byte short", rc_name(rc));
    rc = agent_list_dir(dirfd, ".", 1, dnames, nlen, de, 5, &count, &off);
    check(t, rc == AGENT_EROWS && count == 5, "list_dir", "one entry short", rc_name(rc));
    rc = agent_list_dir(dirfd, "sub", 3, NULL, 0, NULL, 0, &count, &off);
    check(t, rc == AGENT_OK && count == 0 && off == 0, "list_dir", "empty directory", rc_name(rc));
    errno = 0;
    rc = agent_list_dir(dirfd, "a", 1, dnames, nlen, de, 6, &count, &off);
    check(t, rc == AGENT_EIO && errno == ENOTDIR, "list_dir", "a file", "not ENOTDIR");
    errno = 0;
    rc = agent_list_dir(dirfd, "gone", 4, dnames, nlen, de, 6, &count, &off);
    check(t, rc == AGENT_EIO && errno == ENOENT, "list_dir", "vanished", "not ENOENT");
    errno = 0;
    rc = agent_list_dir(dirfd, "nu\0l", 4, dnames, nlen, de, 6, &count, &off);
    check(t, rc == AGENT_EIO && errno == EINVAL, "list_dir", "NUL inside the path", "not EINVAL");
    free(dnames);

    /* realpath: "<dir>/sub/.." is <dir> (its last component at least: /tmp
     * may be a link), into a buffer of exactly that size, not one byte less. */
    {
        char in[4096], *out;
        size_t want, got;
        const char *base = strrchr(dir, '/');

        snprintf(in, sizeof in, "%s/sub/..", dir);
        rc = agent_realpath(in, strlen(in), NULL, 0, &want);
        check(t, rc == AGENT_ETRUNC && want > strlen(base), "realpath", "no room says how much", rc_name(rc));
        out = malloc(want);
        rc = agent_realpath(in, strlen(in), out, want, &got);
        check(t, rc == AGENT_OK && got == want && memcmp(out + got - strlen(base), base, strlen(base)) == 0,
              "realpath", "dot-dot resolved", rc_name(rc));
        rc = agent_realpath(in, strlen(in), out, want - 1, &got);
        check(t, rc == AGENT_ETRUNC && got == want, "realpath", "one byte short", rc_name(rc));
        free(out);
        snprintf(in, sizeof in, "%s/gone/x", dir);
        errno = 0;
        rc = agent_realpath(in, strlen(in), NULL, 0, &got);
        check(t, rc == AGENT_EIO && errno == ENOENT, "realpath", "missing component", "not ENOENT");
        errno = 0;
        rc = agent_realpath("/tm\0p", 5, NULL, 0, &got);
        check(t, rc == AGENT_EIO && errno == EINVAL, "realpath", "NUL inside", "not EINVAL");
    }

    close(dirfd);
    for (i = 0; i < 6; i++) {
        static const char *const files[] = { "a", "eight888", "nine9999x", "fifo", NULL, NULL };
        const char *name = i == 4 ? longname : files[i];

        if (!name)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/sub", dir);
    rmdir(path);
    rmdir(dir);
}

/* tests/c/cgroups_checks.c: the cgroup walker's checks (linked in as a helper); returns its failures. */
int test_cgroups(int *run);

int main(void)
{
    struct ctx t = { 0, 0 };

    check(&t, agent_abi_version() == AGENT_ABI_VERSION, "abi", "version", "mismatch");
    test_scalars(&t);
    test_rows(&t);
    test_prefixes(&t);
    test_mutations(&t);
    test_read_fd(&t);
    test_read_fd_faults(&t);
    test_live_proc(&t);
    test_tune_malloc(&t);
    test_read_files(&t);
    t.failed += test_cgroups(&t.run);
    printf("%d checks, %d failed\n", t.run, t.failed);
    return t.failed ? 1 : 0;
}
