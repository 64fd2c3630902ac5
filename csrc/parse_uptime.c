/* /proc/uptime -> struct agent_uptime (docs/PARSERS.md, "/proc/uptime"). */
#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <string.h>

enum { AGENT_UPTIME_LINE_FIELDS = 2 };

int agent_parse_uptime(const char *buf, size_t len,
                       struct agent_uptime *out, size_t *err_line)
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

    /* The 2-field count comes before any value check. */
    for (i = 0, p = agent_skip_space(buf, e); p < e && i < AGENT_UPTIME_LINE_FIELDS; i++) {
        const char *fe;
        double *v = i == 0 ? &out->uptime_seconds : &out->idle_seconds;
        int rc = agent_scan_decimal(p, e, &fe, v);

        if (rc == AGENT_OK)
            out->present |= (uint64_t)1 << (AGENT_UPTIME_UPTIME + i);
        else if (first_err == AGENT_OK)
            first_err = rc;
        p = agent_skip_space(fe, e);
    }
    if (i < AGENT_UPTIME_LINE_FIELDS)
        return AGENT_EFORMAT;
    if (first_err != AGENT_OK)
        return first_err;
    *err_line = 0;
    return AGENT_OK;
}

int agent_load_uptime(int fd, char *buf, size_t cap, size_t *len,
                      struct agent_uptime *out, size_t *err_line)
{
    int rc = agent_read_fd(fd, buf, cap, len);

    if (rc != AGENT_OK) {
        *err_line = 0;
        return rc;
    }
    return agent_parse_uptime(buf, *len, out, err_line);
}
