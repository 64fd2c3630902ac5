/* libFuzzer targets for the C parsers (docs/PARSERS.md).
 *
 * One source file, one binary per /proc source: fuzz/run.sh compiles it once
 * per source with -DFUZZ_SOURCE=<n> (FUZZ_STAT .. FUZZ_LOAD below), so each
 * target keeps its own coverage map and corpus.  FUZZ_LOAD is the read path:
 * the input goes into a memfd and agent_load_<source> reads it back through
 * agent_read_fd with buffers too small, exact and large.  FUZZ_GROW is a file
 * that grows while it is read: pread is wrapped (link with
 * -Wl,--wrap=pread) to append the rest of the input, in steps, before the
 * reader's later calls.
 *
 * Besides ASan and UBSan, every input is held to the contract of
 * agent_api.h and PARSERS.md; a broken rule aborts, which libFuzzer reports
 * as a crash:
 *  - the input is a heap block of exactly its length (a NULL pointer when it
 *    is empty), outputs are heap blocks of exactly the size the caller
 *    passes, so a read past len or a write past the struct, the row array or
 *    the 64-byte name is an ASan error;
 *  - the status is 0 or a parse error (never ETRUNC or EIO from a parser),
 *    err_line is 0 on success and for EMISSING, else a line of the input;
 *  - parsing into outputs pre-filled with 0x00 and with 0xff gives the same
 *    status, line, count and, on success, the same bytes (so every byte is
 *    written: names zero-padded), and fields absent from `present` are 0;
 *  - rows: count <= cap; caps 0, 1, 2, 3 and one large enough for every
 *    line agree with each other (EROWS with count = cap exactly when cap is
 *    at most the large run's count, the same rows before that).  The stat
 *    target checks both its struct (as a scalar) and its per-CPU rows.
 */
#define _GNU_SOURCE

#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum { FUZZ_STAT, FUZZ_MEMINFO, FUZZ_DISKSTATS, FUZZ_NETDEV, FUZZ_LOADAVG, FUZZ_UPTIME, FUZZ_LOAD,
       FUZZ_GROW };

#ifndef FUZZ_SOURCE
#error "compile with -DFUZZ_SOURCE=<0..7>"
#endif

#define B(i) ((uint64_t)1 << (i))
#define MASK(n) (B(n) - 1)

#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__,        \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (!p)
        abort();
    return p;
}

/* The grammar's white space (and '\n', which ends a line). */
static int is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Lines as the grammar counts them. */
static size_t count_lines(const char *buf, size_t len)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++)
        n += buf[i] == '\n';
    if (len && buf[len - 1] != '\n')
        n++;
    return n;
}

static void check_status(int rc, size_t line, size_t lines)
{
    REQUIRE(rc == AGENT_OK || rc == AGENT_EROWS || rc == AGENT_EFORMAT || rc == AGENT_ERANGE
            || rc == AGENT_ENAME || rc == AGENT_EMISSING);
    if (rc == AGENT_OK || rc == AGENT_EMISSING)
        REQUIRE(line == 0);
    else
        REQUIRE(line >= 1 && line <= (lines ? lines : 1));
}

/* Every uint64_t field after `present` whose bit is clear must be 0. */
static void check_absent_zero(const void *obj, size_t nfields)
{
    uint64_t present, v;
    size_t i;

    memcpy(&present, obj, sizeof present);
    REQUIRE((present & ~MASK(nfields)) == 0);
    for (i = 0; i < nfields; i++) {
        memcpy(&v, (const char *)obj + (i + 1) * sizeof v, sizeof v);
        if (!(present & B(i)))
            REQUIRE(v == 0);
    }
}

/* stat's rows, as many as there are lines (never EROWS), then dropped:
 * fuzz_rows checks them. */
static int parse_stat_only(const char *buf, size_t len, void *out, size_t *line)
{
    size_t cap = count_lines(buf, len) + 1, count;
    struct agent_cpu *rows = xmalloc(cap * sizeof *rows);
    int rc = agent_parse_stat(buf, len, out, rows, cap, &count, line);

    free(rows);
    return rc;
}

static int call_scalar(int src, const char *buf, size_t len, void *out, size_t *line)
{
    switch (src) {
    case FUZZ_STAT: return parse_stat_only(buf, len, out, line);
    case FUZZ_MEMINFO: return agent_parse_meminfo(buf, len, out, line);
    case FUZZ_LOADAVG: return agent_parse_loadavg(buf, len, out, line);
    default: return agent_parse_uptime(buf, len, out, line);
    }
}

static size_t scalar_size(int src)
{
    switch (src) {
    case FUZZ_STAT: return sizeof(struct agent_stat);
    case FUZZ_MEMINFO: return sizeof(struct agent_meminfo);
    case FUZZ_LOADAVG: return sizeof(struct agent_loadavg);
    default: return sizeof(struct agent_uptime);
    }
}

static void fuzz_scalar(int src, const char *buf, size_t len)
{
    size_t size = scalar_size(src), lines = count_lines(buf, len);
    unsigned char *out[2];
    size_t line[2];
    int rc[2], pass;
    uint64_t present;

    for (pass = 0; pass < 2; pass++) {
        out[pass] = xmalloc(size);
        memset(out[pass], pass ? 0xff : 0x00, size);
        line[pass] = pass ? 777 : 0;
        rc[pass] = call_scalar(src, buf, len, out[pass], &line[pass]);
        check_status(rc[pass], line[pass], lines);
        REQUIRE(rc[pass] != AGENT_EROWS);
    }
    REQUIRE(rc[0] == rc[1] && line[0] == line[1]);
    if (rc[0] == AGENT_OK) {
        REQUIRE(memcmp(out[0], out[1], size) == 0);
        memcpy(&present, out[0], sizeof present);
        switch (src) {
        case FUZZ_STAT:
            check_absent_zero(out[0], AGENT_STAT_NFIELDS);
            /* user, nice, system, idle: every accepted cpu line. */
            REQUIRE((present & MASK(4)) == MASK(4));
            break;
        case FUZZ_MEMINFO:
            check_absent_zero(out[0], AGENT_MEMINFO_NFIELDS);
            REQUIRE(present & B(AGENT_MEMINFO_MEM_TOTAL));
            break;
        case FUZZ_LOADAVG:
            REQUIRE(present == MASK(AGENT_LOADAVG_NFIELDS));
            break;
        default:
            REQUIRE(present == MASK(AGENT_UPTIME_NFIELDS));
            break;
        }
    } else if (src == FUZZ_LOADAVG || src == FUZZ_UPTIME) {
        /* Only line 1 counts, so every error is on it. */
        REQUIRE(line[0] == 1);
    }
    free(out[0]);
    free(out[1]);
}

/* ------------------------------------------------------------------- rows */

static size_t row_size(int src)
{
    switch (src) {
    case FUZZ_STAT: return sizeof(struct agent_cpu);
    case FUZZ_DISKSTATS: return sizeof(struct agent_diskstats);
    default: return sizeof(struct agent_netdev);
    }
}

static int call_rows(int src, const char *buf, size_t len, void *rows, size_t cap,
                     size_t *count, size_t *line)
{
    if (src == FUZZ_STAT) {
        struct agent_stat st;
        int rc = agent_parse_stat(buf, len, &st, rows, cap, count, line);

        if (rc == AGENT_OK)
            REQUIRE(st.cpu_count == *count && !(st.present & B(AGENT_STAT_CPU_COUNT)) == !*count);
        return rc;
    }
    if (src == FUZZ_DISKSTATS)
        return agent_parse_diskstats(buf, len, rows, cap, count, line);
    return agent_parse_netdev(buf, len, rows, cap, count, line);
}

static void check_row(int src, const unsigned char *row)
{
    uint64_t present, name_len;
    const char *name;
    size_t j;

    memcpy(&present, row, sizeof present);
    if (src == FUZZ_STAT) {
        const struct agent_cpu *c = (const void *)row;

        REQUIRE(present == MASK(4) || present == MASK(5) || present == MASK(6) || present == MASK(7)
                || present == MASK(8) || present == MASK(9) || present == MASK(10));
        REQUIRE(c->cpu < AGENT_MAX_CPUS);
        /* The CPU number sits between present and the columns. */
        for (j = 0; j < AGENT_CPU_NFIELDS; j++) {
            uint64_t v;

            memcpy(&v, row + (j + 2) * sizeof v, sizeof v);
            if (!(present & B(j)))
                REQUIRE(v == 0);
        }
        return;
    }
    if (src == FUZZ_DISKSTATS) {
        const struct agent_diskstats *d = (const void *)row;
        uint64_t old = B(AGENT_DISK_READS_COMPLETED) | B(AGENT_DISK_SECTORS_READ)
                       | B(AGENT_DISK_WRITES_COMPLETED) | B(AGENT_DISK_SECTORS_WRITTEN);

        REQUIRE(present == old || present == MASK(11) || present == MASK(12) || present == MASK(13)
                || present == MASK(14) || present == MASK(15) || present == MASK(16)
                || present == MASK(17));
        name_len = d->name_len;
        name = d->name;
        /* major and minor sit between present and the stats. */
        for (j = 0; j < AGENT_DISK_NFIELDS; j++) {
            uint64_t v;

            memcpy(&v, row + (j + 3) * sizeof v, sizeof v);
            if (!(present & B(j)))
                REQUIRE(v == 0);
        }
    } else {
        const struct agent_netdev *n = (const void *)row;

        REQUIRE(present == MASK(AGENT_NETDEV_NFIELDS));
        name_len = n->name_len;
        name = n->name;
    }
    REQUIRE(name_len >= 1 && name_len <= AGENT_NAME_MAX);
    for (j = name_len; j < AGENT_NAME_MAX; j++)
        REQUIRE(name[j] == 0);
    if (src == FUZZ_NETDEV) {
        /* Stripped of white space at both ends, and never holding '\n'. */
        REQUIRE(!is_ws(name[0]) && !is_ws(name[name_len - 1]));
        REQUIRE(memchr(name, '\n', name_len) == NULL);
    } else {
        for (j = 0; j < name_len; j++)
            REQUIRE(!is_ws(name[j]));
    }
}

struct rows_run {
    int rc;
    size_t line, count;
    unsigned char *rows;
};

/* Parse into a heap array of exactly cap rows (NULL for cap 0), twice with
 * different fills; returns the 0x00-filled run. */
static struct rows_run run_rows(int src, const char *buf, size_t len, size_t cap, size_t lines)
{
    size_t row = row_size(src);
    struct rows_run r[2];
    size_t i;
    int pass;

    for (pass = 0; pass < 2; pass++) {
        r[pass].rows = cap ? xmalloc(cap * row) : NULL;
        if (cap)
            memset(r[pass].rows, pass ? 0xff : 0x00, cap * row);
        r[pass].count = pass ? 999 : 0;
        r[pass].line = pass ? 999 : 0;
        r[pass].rc = call_rows(src, buf, len, r[pass].rows, cap, &r[pass].count, &r[pass].line);
        check_status(r[pass].rc, r[pass].line, lines);
        REQUIRE(r[pass].rc != AGENT_EMISSING || src == FUZZ_STAT);
        REQUIRE(r[pass].count <= cap);
        if (r[pass].rc == AGENT_EROWS)
            REQUIRE(r[pass].count == cap);
    }
    REQUIRE(r[0].rc == r[1].rc && r[0].line == r[1].line && r[0].count == r[1].count);
    if (r[0].count) {
        REQUIRE(memcmp(r[0].rows, r[1].rows, r[0].count * row) == 0);
        for (i = 0; i < r[0].count; i++)
            check_row(src, r[0].rows + i * row);
        /* Per-CPU rows: ascending CPU numbers. */
        for (i = 1; src == FUZZ_STAT && i < r[0].count; i++)
            REQUIRE(((const struct agent_cpu *)(const void *)r[0].rows)[i].cpu
                    > ((const struct agent_cpu *)(const void *)r[0].rows)[i - 1].cpu);
    }
    free(r[1].rows);
    return r[0];
}

static void fuzz_rows(int src, const char *buf, size_t len)
{
    size_t row = row_size(src);
    size_t lines = count_lines(buf, len);
    /* A row is a non-blank line: lines rows always fit. */
    size_t big_cap = lines + 1;
    struct rows_run big = run_rows(src, buf, len, big_cap, lines);
    size_t cap;

    REQUIRE(big.rc != AGENT_EROWS);
    REQUIRE(big.count <= lines);
    if (src == FUZZ_NETDEV)
        REQUIRE(big.count <= (lines > 2 ? lines - 2 : 0));
    for (cap = 0; cap <= 3; cap++) {
        struct rows_run small = run_rows(src, buf, len, cap, lines);

        if (cap == big.count && big.rc != AGENT_OK && src == FUZZ_STAT) {
            /* stat's error may be on a line that is not a row (or EMISSING
             * at the end): EROWS only where it is a row's. */
            REQUIRE(small.line == big.line && small.count == cap
                    && (small.rc == AGENT_EROWS || small.rc == big.rc));
        } else if (cap < big.count || (cap == big.count && big.rc != AGENT_OK)) {
            /* The row that does not fit is met before its line is checked. */
            REQUIRE(small.rc == AGENT_EROWS && small.count == cap);
            if (big.rc != AGENT_OK && cap == big.count)
                REQUIRE(small.line == big.line);
        } else {
            REQUIRE(small.rc == big.rc && small.line == big.line && small.count == big.count);
        }
        if (small.count)
            REQUIRE(memcmp(small.rows, big.rows, small.count * row) == 0);
        free(small.rows);
    }
    free(big.rows);
}

/* ------------------------------------------------------------------- load */

/* The first byte picks the source and the read buffer size; the rest is the
 * file.  agent_load_* must agree with agent_read_fd + agent_parse_*. */
static void fuzz_load(const uint8_t *data, size_t size)
{
    static const size_t caps[] = { 0, 1, 7, 64, 4096 };
    int src, fd, rc, rc2;
    size_t cap, len = 12345, len2, line, line2, count, count2, i, rows_cap;
    const char *file;
    size_t flen;
    char *buf, *buf2;
    unsigned char *out, *out2;
    struct agent_cpu *srows;
    size_t srows_cap;

    if (size == 0)
        return;
    src = data[0] % 6;
    cap = caps[(data[0] / 6) % 5];
    file = (const char *)data + 1;
    flen = size - 1;
    if ((data[0] / 30) & 1)
        cap = flen;   /* exactly the file's size: the end-of-file probe */
    fd = memfd_create("agent-fuzz", 0);
    if (fd < 0)
        abort();
    for (i = 0; i < flen;) {
        ssize_t w = write(fd, file + i, flen - i);

        if (w <= 0)
            abort();
        i += (size_t)w;
    }

    /* agent_read_fd alone: the head of the file, ETRUNC iff it did not fit. */
    buf = cap ? xmalloc(cap) : NULL;
    rc = agent_read_fd(fd, buf, cap, &len);
    if (flen > cap) {
        REQUIRE(rc == AGENT_ETRUNC && len == cap);
    } else {
        REQUIRE(rc == AGENT_OK && len == flen);
    }
    if (len)
        REQUIRE(memcmp(buf, file, len) == 0);

    /* The loader against read + parse (stat: its struct; fuzz_rows checks
     * its rows). */
    srows_cap = count_lines(file, flen) + 1;
    srows = xmalloc(srows_cap * sizeof *srows);
    rows_cap = (data[0] & 0x80) ? 2 : count_lines(file, flen) + 1;
    out = xmalloc(rows_cap * sizeof(struct agent_diskstats));
    out2 = xmalloc(rows_cap * sizeof(struct agent_diskstats));
    buf2 = cap ? xmalloc(cap) : NULL;
    line = line2 = 4242;
    count = count2 = 4242;
    switch (src) {
    case FUZZ_STAT:
        rc = agent_load_stat(fd, buf2, cap, &len2, (void *)out, srows, srows_cap, &count, &line);
        break;
    case FUZZ_MEMINFO:
        rc = agent_load_meminfo(fd, buf2, cap, &len2, (void *)out, &line);
        break;
    case FUZZ_LOADAVG:
        rc = agent_load_loadavg(fd, buf2, cap, &len2, (void *)out, &line);
        break;
    case FUZZ_UPTIME:
        rc = agent_load_uptime(fd, buf2, cap, &len2, (void *)out, &line);
        break;
    case FUZZ_DISKSTATS:
        rc = agent_load_diskstats(fd, buf2, cap, &len2, (void *)out, rows_cap, &count, &line);
        break;
    default:
        rc = agent_load_netdev(fd, buf2, cap, &len2, (void *)out, rows_cap, &count, &line);
        break;
    }
    REQUIRE(len2 == len);
    if (flen > cap) {
        REQUIRE(rc == AGENT_ETRUNC && line == 0);
        if (src == FUZZ_DISKSTATS || src == FUZZ_NETDEV)
            REQUIRE(count == 0);
    } else {
        size_t size_out;

        switch (src) {
        case FUZZ_DISKSTATS:
        case FUZZ_NETDEV:
            rc2 = call_rows(src, buf, len, out2, rows_cap, &count2, &line2);
            REQUIRE(count == count2);
            size_out = count * (src == FUZZ_DISKSTATS ? sizeof(struct agent_diskstats)
                                                      : sizeof(struct agent_netdev));
            break;
        default:
            rc2 = call_scalar(src, buf, len, out2, &line2);
            size_out = scalar_size(src);
            break;
        }
        REQUIRE(rc == rc2 && line == line2);
        if (rc == AGENT_OK || rc == AGENT_EROWS)
            REQUIRE(size_out == 0 || memcmp(out, out2, size_out) == 0);
    }
    close(fd);
    free(buf);
    free(buf2);
    free(out);
    free(out2);
    free(srows);
}

/* ------------------------------------------------------------------- grow */

#if FUZZ_SOURCE == 7 /* FUZZ_GROW: a preprocessor test cannot see the enum */
/* The file being read, and what is still to be appended to it. */
static struct {
    int fd;
    const char *tail;
    size_t tail_len, step, size;
    unsigned calls, after;
} grow = { -1, NULL, 0, 0, 0, 0, 0 };

ssize_t __real_pread(int fd, void *buf, size_t count, off_t offset);
ssize_t __wrap_pread(int fd, void *buf, size_t count, off_t offset);

/* Before the reader's (after+1)-th pread and every one after it, `step`
 * more bytes of the tail land at the end of the file: the file grows under
 * the reader, between its first read and its end-of-file probe, as a /proc
 * file whose device list changes between two pages of seq_file output. */
ssize_t __wrap_pread(int fd, void *buf, size_t count, off_t offset)
{
    if (fd == grow.fd && grow.tail_len && grow.calls++ >= grow.after) {
        size_t n = grow.tail_len < grow.step ? grow.tail_len : grow.step;

        if (pwrite(fd, grow.tail, n, (off_t)grow.size) != (ssize_t)n)
            abort();
        grow.tail += n;
        grow.tail_len -= n;
        grow.size += n;
    }
    return __real_pread(fd, buf, count, offset);
}

/* Input: byte 0 picks the source and the read buffer, byte 1 after how many
 * reads the file starts growing, byte 2 the growth step (0: all at once),
 * byte 3 how much of the file is there at the start; the rest is the file
 * as it ends up.  Whatever agent_load_* returns must be consistent with
 * what it read, which must be a prefix of that file: ETRUNC with the buffer
 * full, or exactly what agent_parse_* gives for those bytes. */
static void fuzz_grow(const uint8_t *data, size_t size)
{
    static const size_t caps[] = { 0, 1, 7, 64, 4096, 65536 };
    const char *file;
    size_t flen, cap, initial, len = 12345, line = 4242, line2 = 4242, count = 4242, count2 = 4242;
    size_t rows_cap, out_size, srows_cap;
    int src, fd, rc, rc2;
    char *buf, *copy;
    unsigned char *out, *out2;
    struct agent_cpu *srows;

    if (size < 4)
        return;
    src = data[0] % 6;
    cap = caps[(data[0] / 6) % 6];
    file = (const char *)data + 4;
    flen = size - 4;
    initial = flen * data[3] / 255;
    fd = memfd_create("agent-fuzz-grow", 0);
    if (fd < 0)
        abort();
    if (initial && pwrite(fd, file, initial, 0) != (ssize_t)initial)
        abort();
    grow.fd = fd;
    grow.tail = file + initial;
    grow.tail_len = flen - initial;
    grow.size = initial;
    grow.step = data[2] ? data[2] : flen + 1;
    grow.after = data[1] % 8;
    grow.calls = 0;

    buf = cap ? xmalloc(cap) : NULL;
    srows_cap = count_lines(file, flen) + 1;
    srows = xmalloc(srows_cap * sizeof *srows);
    rows_cap = (data[0] & 0x80) ? 2 : count_lines(file, flen) + 1;
    out_size = rows_cap * sizeof(struct agent_diskstats);
    out = xmalloc(out_size);
    out2 = xmalloc(out_size);
    switch (src) {
    case FUZZ_STAT:
        rc = agent_load_stat(fd, buf, cap, &len, (void *)out, srows, srows_cap, &count, &line);
        break;
    case FUZZ_MEMINFO: rc = agent_load_meminfo(fd, buf, cap, &len, (void *)out, &line); break;
    case FUZZ_LOADAVG: rc = agent_load_loadavg(fd, buf, cap, &len, (void *)out, &line); break;
    case FUZZ_UPTIME: rc = agent_load_uptime(fd, buf, cap, &len, (void *)out, &line); break;
    case FUZZ_DISKSTATS:
        rc = agent_load_diskstats(fd, buf, cap, &len, (void *)out, rows_cap, &count, &line);
        break;
    default:
        rc = agent_load_netdev(fd, buf, cap, &len, (void *)out, rows_cap, &count, &line);
        break;
    }
    grow.fd = -1;

    /* What it read is what the file held there, never past what it holds. */
    REQUIRE(len <= cap && len <= grow.size);
    if (len)
        REQUIRE(memcmp(buf, file, len) == 0);
    if (rc == AGENT_ETRUNC) {
        REQUIRE(len == cap && line == 0);
    } else {
        REQUIRE(rc != AGENT_EIO);
        copy = len ? xmalloc(len) : NULL;
        if (len)
            memcpy(copy, buf, len);
        if (src == FUZZ_DISKSTATS || src == FUZZ_NETDEV) {
            rc2 = call_rows(src, copy, len, out2, rows_cap, &count2, &line2);
            REQUIRE(count == count2);
            out_size = count * (src == FUZZ_DISKSTATS ? sizeof(struct agent_diskstats)
                                                      : sizeof(struct agent_netdev));
        } else {
            rc2 = call_scalar(src, copy, len, out2, &line2);
            out_size = scalar_size(src);
        }
        REQUIRE(rc == rc2 && line == line2);
        if (rc == AGENT_OK || rc == AGENT_EROWS)
            REQUIRE(out_size == 0 || memcmp(out, out2, out_size) == 0);
        free(copy);
    }
    close(fd);
    free(buf);
    free(out);
    free(out2);
    free(srows);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf;

    if (FUZZ_SOURCE == FUZZ_LOAD) {
        fuzz_load(data, size);
        return 0;
    }
#if FUZZ_SOURCE == 7 /* FUZZ_GROW: a preprocessor test cannot see the enum */
    fuzz_grow(data, size);
    return 0;
#endif
    /* An exact heap copy (libFuzzer's own buffer is exact too, but this keeps
     * the harness honest under other drivers); an empty input is NULL. */
    buf = size ? xmalloc(size) : NULL;
    if (size)
        memcpy(buf, data, size);
    if (FUZZ_SOURCE == FUZZ_DISKSTATS || FUZZ_SOURCE == FUZZ_NETDEV || FUZZ_SOURCE == FUZZ_STAT)
        fuzz_rows(FUZZ_SOURCE, buf, size);
    if (FUZZ_SOURCE != FUZZ_DISKSTATS && FUZZ_SOURCE != FUZZ_NETDEV)
        fuzz_scalar(FUZZ_SOURCE, buf, size);
    free(buf);
    return 0;
}
