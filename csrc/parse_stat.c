/* /proc/stat -> struct agent_stat and rows of struct agent_cpu
 * (docs/PARSERS.md, "/proc/stat"). */
#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <string.h>

enum { AGENT_STAT_COLUMNS = AGENT_CPU_NFIELDS };

/* In enum order: user .. guest_nice (steal 2.6.11, guest 2.6.24,
 * guest_nice 2.6.33), then the scalar lines. */
static const size_t agent_stat_off[AGENT_STAT_NFIELDS] = {
    offsetof(struct agent_stat, cpu_user),
    offsetof(struct agent_stat, cpu_nice),
    offsetof(struct agent_stat, cpu_system),
    offsetof(struct agent_stat, cpu_idle),
    offsetof(struct agent_stat, cpu_iowait),
    offsetof(struct agent_stat, cpu_irq),
    offsetof(struct agent_stat, cpu_softirq),
    offsetof(struct agent_stat, cpu_steal),
    offsetof(struct agent_stat, cpu_guest),
    offsetof(struct agent_stat, cpu_guest_nice),
    offsetof(struct agent_stat, intr),
    offsetof(struct agent_stat, ctxt),
    offsetof(struct agent_stat, btime),
    offsetof(struct agent_stat, processes),
    offsetof(struct agent_stat, procs_running),
    offsetof(struct agent_stat, procs_blocked),
    offsetof(struct agent_stat, cpu_count),
};

static const size_t agent_cpu_off[AGENT_CPU_NFIELDS] = {
    offsetof(struct agent_cpu, user),
    offsetof(struct agent_cpu, nice),
    offsetof(struct agent_cpu, system),
    offsetof(struct agent_cpu, idle),
    offsetof(struct agent_cpu, iowait),
    offsetof(struct agent_cpu, irq),
    offsetof(struct agent_cpu, softirq),
    offsetof(struct agent_cpu, steal),
    offsetof(struct agent_cpu, guest),
    offsetof(struct agent_cpu, guest_nice),
};

/* The key's field index, -1 for a key the grammar skips.  Length first: on a
 * many-CPU host nearly every line is "cpuN", rejected without a memcmp. */
static int agent_stat_key(const char *k, size_t n)
{
    switch (n) {
    case 3:
        return memcmp(k, "cpu", 3) == 0 ? AGENT_STAT_CPU_USER : -1;
    case 4:
        if (memcmp(k, "ctxt", 4) == 0)
            return AGENT_STAT_CTXT;
        if (memcmp(k, "intr", 4) == 0)
            return AGENT_STAT_INTR;
        return -1;
    case 5:
        return memcmp(k, "btime", 5) == 0 ? AGENT_STAT_BTIME : -1;
    case 9:
        return memcmp(k, "processes", 9) == 0 ? AGENT_STAT_PROCESSES : -1;
    case 13:
        if (memcmp(k, "procs_running", 13) == 0)
            return AGENT_STAT_PROCS_RUNNING;
        if (memcmp(k, "procs_blocked", 13) == 0)
            return AGENT_STAT_PROCS_BLOCKED;
        return -1;
    default:
        return -1;
    }
}

/* "cpu" and one or more digits: a per-CPU line, 1, with its number in
 * *index (AGENT_MAX_CPUS or more standing for any number that large: the
 * value saturates, and leading zeros keep it at 0); else 0. */
static int agent_stat_cpu_n(const char *k, size_t n, uint64_t *index)
{
    uint64_t v = 0;
    size_t i;

    if (n < 4 || memcmp(k, "cpu", 3) != 0)
        return 0;
    for (i = 3; i < n; i++) {
        unsigned d = (unsigned)((unsigned char)k[i] - '0');

        if (d > 9)
            return 0;
        if (v < AGENT_MAX_CPUS)
            v = v * 10 + d;
    }
    *index = v;
    return 1;
}

/* The columns after a "cpu" or "cpuN" key, stored at off[i] in obj, their
 * bits added to *present: fewer than 4 is EFORMAT, checked before any
 * counter, so the first counter error is held until the count is known. */
static int agent_stat_columns(const char *p, const char *e, void *obj,
                              const size_t *off, uint64_t *present)
{
    uint64_t bits = 0;
    int first_err = AGENT_OK;
    int i = 0;

    for (p = agent_skip_space(p, e); p < e && i < AGENT_STAT_COLUMNS; i++) {
        const char *fe;
        uint64_t v;
        int rc = agent_scan_counter(p, e, &fe, &v);

        if (rc != AGENT_OK) {
            if (first_err == AGENT_OK)
                first_err = rc;
        } else {
            agent_store_u64(obj, off[i], v);
            bits |= (uint64_t)1 << i;
        }
        p = agent_skip_space(fe, e);
    }
    if (i < 4)
        return AGENT_EFORMAT;
    if (first_err != AGENT_OK)
        return first_err;
    *present |= bits;
    return AGENT_OK;
}

/* A per-CPU line, after its key: its number must be below AGENT_MAX_CPUS
 * and above the previous row's (the kernel prints online CPUs in
 * ascending order, so a repeat or a step back is not its output). */
static int agent_stat_cpu_row(const char *p, const char *e, uint64_t index,
                              const struct agent_cpu *prev, struct agent_cpu *row)
{
    if (index >= AGENT_MAX_CPUS || (prev && index <= prev->cpu))
        return AGENT_EFORMAT;
    memset(row, 0, sizeof *row);
    row->cpu = index;
    return agent_stat_columns(p, e, row, agent_cpu_off, &row->present);
}

int agent_parse_stat(const char *buf, size_t len, struct agent_stat *out,
                     struct agent_cpu *rows, size_t cap, size_t *count,
                     size_t *err_line)
{
    struct agent_lines it;
    const char *ls, *le;
    size_t n = 0;

    memset(out, 0, sizeof *out);
    *count = 0;
    *err_line = 0;
    agent_lines_init(&it, buf, len);
    while (agent_lines_next(&it, &ls, &le)) {
        const char *k = agent_skip_space(ls, le);
        const char *ke, *fe;
        uint64_t v, index;
        int key, rc;

        if (k == le)
            continue;
        ke = agent_field_end(k, le);
        if (agent_stat_cpu_n(k, (size_t)(ke - k), &index)) {
            /* Checked before the line is parsed: only the C caller sees
             * EROWS, and it parses again with a larger array. */
            if (n == cap) {
                *count = n;
                *err_line = it.no;
                return AGENT_EROWS;
            }
            rc = agent_stat_cpu_row(ke, le, index, n ? &rows[n - 1] : NULL, &rows[n]);
            if (rc != AGENT_OK) {
                *count = n;
                *err_line = it.no;
                return rc;
            }
            n++;
            continue;
        }
        key = agent_stat_key(k, (size_t)(ke - k));
        if (key < 0)
            continue;
        /* A duplicate is reported before anything else on its line. */
        if (out->present & ((uint64_t)1 << key)) {
            rc = AGENT_EFORMAT;
        } else if (key == AGENT_STAT_CPU_USER) {
            rc = agent_stat_columns(ke, le, out, agent_stat_off, &out->present);
        } else {
            /* intr: the first number is the total; the per-IRQ counts
             * after it (thousands on a large host) are not looked at. */
            const char *f = agent_skip_space(ke, le);

            if (f == le) {
                rc = AGENT_EFORMAT;
            } else {
                rc = agent_scan_counter(f, le, &fe, &v);
                if (rc == AGENT_OK) {
                    agent_store_u64(out, agent_stat_off[key], v);
                    out->present |= (uint64_t)1 << key;
                }
            }
        }
        if (rc != AGENT_OK) {
            *count = n;
            *err_line = it.no;
            return rc;
        }
    }
    *count = n;
    if (!(out->present & ((uint64_t)1 << AGENT_STAT_CPU_USER)))
        return AGENT_EMISSING;
    if (n > 0) {
        out->cpu_count = n;
        out->present |= (uint64_t)1 << AGENT_STAT_CPU_COUNT;
    }
    return AGENT_OK;
}

int agent_load_stat(int fd, char *buf, size_t cap, size_t *len,
                    struct agent_stat *out, struct agent_cpu *rows,
                    size_t rows_cap, size_t *count, size_t *err_line)
{
    int rc = agent_read_fd(fd, buf, cap, len);

    if (rc != AGENT_OK) {
        memset(out, 0, sizeof *out);
        *count = 0;
        *err_line = 0;
        return rc;
    }
    return agent_parse_stat(buf, *len, out, rows, rows_cap, count, err_line);
}
