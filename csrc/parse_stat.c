/* /proc/stat -> struct agent_stat (docs/PARSERS.md, "/proc/stat"). */
#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <string.h>

enum { AGENT_STAT_CPU_MAX = AGENT_STAT_CPU_GUEST_NICE + 1 };

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
    offsetof(struct agent_stat, ctxt),
    offsetof(struct agent_stat, btime),
    offsetof(struct agent_stat, processes),
    offsetof(struct agent_stat, procs_running),
    offsetof(struct agent_stat, procs_blocked),
    offsetof(struct agent_stat, cpu_count),
};

/* The key's field index, -1 for a key the grammar skips.  Length first: on a
 * many-CPU host nearly every line is "cpuN" or "intr"/"softirq", rejected
 * without a memcmp. */
static int agent_stat_key(const char *k, size_t n)
{
    switch (n) {
    case 3:
        return memcmp(k, "cpu", 3) == 0 ? AGENT_STAT_CPU_USER : -1;
    case 4:
        return memcmp(k, "ctxt", 4) == 0 ? AGENT_STAT_CTXT : -1;
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

/* "cpu" and one or more digits: a per-CPU line, counted, never parsed. */
static int agent_stat_is_cpu_n(const char *k, size_t n)
{
    size_t i;

    if (n < 4 || memcmp(k, "cpu", 3) != 0)
        return 0;
    for (i = 3; i < n; i++)
        if (k[i] < '0' || k[i] > '9')
            return 0;
    return 1;
}

/* The fields after "cpu": fewer than 4 is EFORMAT, checked before any
 * counter, so the first counter error is held until the count is known. */
static int agent_stat_cpu(const char *p, const char *e, struct agent_stat *out)
{
    uint64_t present = 0;
    int first_err = AGENT_OK;
    int i = 0;

    for (p = agent_skip_space(p, e); p < e && i < AGENT_STAT_CPU_MAX; i++) {
        const char *fe;
        uint64_t v;
        int rc = agent_scan_counter(p, e, &fe, &v);

        if (rc != AGENT_OK) {
            if (first_err == AGENT_OK)
                first_err = rc;
        } else {
            agent_store_u64(out, agent_stat_off[i], v);
            present |= (uint64_t)1 << i;
        }
        p = agent_skip_space(fe, e);
    }
    if (i < 4)
        return AGENT_EFORMAT;
    if (first_err != AGENT_OK)
        return first_err;
    out->present |= present;
    return AGENT_OK;
}

int agent_parse_stat(const char *buf, size_t len,
                     struct agent_stat *out, size_t *err_line)
{
    struct agent_lines it;
    const char *ls, *le;
    uint64_t cpus = 0;

    memset(out, 0, sizeof *out);
    *err_line = 0;
    agent_lines_init(&it, buf, len);
    while (agent_lines_next(&it, &ls, &le)) {
        const char *k = agent_skip_space(ls, le);
        const char *ke, *fe;
        uint64_t v;
        int key, rc;

        if (k == le)
            continue;
        ke = agent_field_end(k, le);
        if (agent_stat_is_cpu_n(k, (size_t)(ke - k))) {
            cpus++;
            continue;
        }
        key = agent_stat_key(k, (size_t)(ke - k));
        if (key < 0)
            continue;
        /* A duplicate is reported before anything else on its line. */
        if (out->present & ((uint64_t)1 << key)) {
            *err_line = it.no;
            return AGENT_EFORMAT;
        }
        if (key == AGENT_STAT_CPU_USER) {
            rc = agent_stat_cpu(ke, le, out);
        } else {
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
            *err_line = it.no;
            return rc;
        }
    }
    if (!(out->present & ((uint64_t)1 << AGENT_STAT_CPU_USER)))
        return AGENT_EMISSING;
    if (cpus > 0) {
        out->cpu_count = cpus;
        out->present |= (uint64_t)1 << AGENT_STAT_CPU_COUNT;
    }
    return AGENT_OK;
}

int agent_load_stat(int fd, char *buf, size_t cap, size_t *len,
                    struct agent_stat *out, size_t *err_line)
{
    int rc = agent_read_fd(fd, buf, cap, len);

    if (rc != AGENT_OK) {
        *err_line = 0;
        return rc;
    }
    return agent_parse_stat(buf, *len, out, err_line);
}
