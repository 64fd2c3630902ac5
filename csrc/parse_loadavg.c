/* /proc/loadavg -> struct agent_loadavg (docs/PARSERS.md, "/proc/loadavg"). */
#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <string.h>

enum { AGENT_LOADAVG_LINE_FIELDS = 5 };

/* Field 4, "R/T": split at its first '/', both sides counters, left first. */
static int agent_loadavg_tasks(const char *p, const char *fe, struct agent_loadavg *out)
{
    const char *slash = memchr(p, '/', (size_t)(fe - p));
    const char *end;
    int rc;

    if (!slash)
        return AGENT_EFORMAT;
    /* An empty side makes agent_scan_counter return EFORMAT. */
    rc = agent_scan_counter(p, slash, &end, &out->runnable);
    if (rc != AGENT_OK)
        return rc;
    rc = agent_scan_counter(slash + 1, fe, &end, &out->threads);
    if (rc != AGENT_OK)
        return rc;
    out->present |= (uint64_t)1 << AGENT_LOADAVG_RUNNABLE
                  | (uint64_t)1 << AGENT_LOADAVG_THREADS;
    return AGENT_OK;
}

int agent_parse_loadavg(const char *buf, size_t len,
                        struct agent_loadavg *out, size_t *err_line)
{
    const char *p, *e, *nl;
    int first_err = AGENT_OK;
    int i;

    memset(out, 0, sizeof *out);
    /* Only line 1 counts; every error is on it, and an empty file is a
     * line 1 without fields. */
    *err_line = 1;
    if (len == 0)
        return AGENT_EFORMAT;
    nl = memchr(buf, '\n', len);
    e = nl ? nl : buf + len;

    /* The 5-field count comes before any value check: hold the first value
     * error until the count is known. */
    for (i = 0, p = agent_skip_space(buf, e); p < e && i < AGENT_LOADAVG_LINE_FIELDS; i++) {
        const char *fe;
        int rc;

        if (i < 3) {
            double *load = i == 0 ? &out->load1 : i == 1 ? &out->load5 : &out->load15;

            rc = agent_scan_decimal(p, e, &fe, load);
            if (rc == AGENT_OK)
                out->present |= (uint64_t)1 << (AGENT_LOADAVG_LOAD1 + i);
        } else if (i == 3) {
            fe = agent_field_end(p, e);
            rc = agent_loadavg_tasks(p, fe, out);
        } else {
            rc = agent_scan_counter(p, e, &fe, &out->last_pid);
            if (rc == AGENT_OK)
                out->present |= (uint64_t)1 << AGENT_LOADAVG_LAST_PID;
        }
        if (rc != AGENT_OK && first_err == AGENT_OK)
            first_err = rc;
        p = agent_skip_space(fe, e);
    }
    if (i < AGENT_LOADAVG_LINE_FIELDS)
        return AGENT_EFORMAT;
    if (first_err != AGENT_OK)
        return first_err;
    *err_line = 0;
    return AGENT_OK;
}

int agent_load_loadavg(int fd, char *buf, size_t cap, size_t *len,
                       struct agent_loadavg *out, size_t *err_line)
{
    int rc = agent_read_fd(fd, buf, cap, len);

    if (rc != AGENT_OK) {
        *err_line = 0;
        return rc;
    }
    return agent_parse_loadavg(buf, *len, out, err_line);
}
