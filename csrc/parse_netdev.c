/* /proc/net/dev -> rows of struct agent_netdev (docs/PARSERS.md, "/proc/net/dev"). */
#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <string.h>

enum { AGENT_NETDEV_HEADER_LINES = 2 };

static const size_t agent_netdev_off[AGENT_NETDEV_NFIELDS] = {
    offsetof(struct agent_netdev, rx_bytes),
    offsetof(struct agent_netdev, rx_packets),
    offsetof(struct agent_netdev, rx_errs),
    offsetof(struct agent_netdev, rx_drop),
    offsetof(struct agent_netdev, rx_fifo),
    offsetof(struct agent_netdev, rx_frame),
    offsetof(struct agent_netdev, rx_compressed),
    offsetof(struct agent_netdev, rx_multicast),
    offsetof(struct agent_netdev, tx_bytes),
    offsetof(struct agent_netdev, tx_packets),
    offsetof(struct agent_netdev, tx_errs),
    offsetof(struct agent_netdev, tx_drop),
    offsetof(struct agent_netdev, tx_fifo),
    offsetof(struct agent_netdev, tx_colls),
    offsetof(struct agent_netdev, tx_carrier),
    offsetof(struct agent_netdev, tx_compressed),
};

/* One non-blank line [ls, le). */
static int agent_netdev_row(const char *ls, const char *le, struct agent_netdev *row)
{
    const char *colon, *next, *ns, *ne, *p;
    int first_err = AGENT_OK;
    size_t n, i = 0;

    memset(row, 0, sizeof *row);
    /* The name ends at the last colon: alias names such as "team0:1:" hold
     * colons, and a 20-digit counter leaves no space after the last one
     * ("eth1:18446744073709551615 ...").  Forward memchr hops: lines have
     * one colon nearly always, so this is two memchr calls. */
    colon = memchr(ls, ':', (size_t)(le - ls));
    if (!colon)
        return AGENT_EFORMAT;
    while (colon + 1 < le && (next = memchr(colon + 1, ':', (size_t)(le - colon - 1))) != NULL)
        colon = next;

    ns = agent_skip_space(ls, colon);
    ne = colon;
    while (ne > ns && agent_is_space((unsigned char)ne[-1]))
        ne--;
    n = (size_t)(ne - ns);
    if (n == 0 || n > AGENT_NAME_MAX)
        return AGENT_ENAME;
    memcpy(row->name, ns, n);
    row->name_len = n;

    /* At least 16 fields is checked before any counter: hold the first
     * counter error until the count is known. */
    for (p = agent_skip_space(colon + 1, le); p < le && i < AGENT_NETDEV_NFIELDS; i++) {
        const char *fe;
        uint64_t v;
        int rc = agent_scan_counter(p, le, &fe, &v);

        if (rc != AGENT_OK) {
            if (first_err == AGENT_OK)
                first_err = rc;
        } else {
            agent_store_u64(row, agent_netdev_off[i], v);
        }
        p = agent_skip_space(fe, le);
    }
    if (i < AGENT_NETDEV_NFIELDS)
        return AGENT_EFORMAT;
    if (first_err != AGENT_OK)
        return first_err;
    row->present = ((uint64_t)1 << AGENT_NETDEV_NFIELDS) - 1;
    return AGENT_OK;
}

int agent_parse_netdev(const char *buf, size_t len,
                       struct agent_netdev *rows, size_t cap,
                       size_t *count, size_t *err_line)
{
    struct agent_lines it;
    const char *ls, *le;
    size_t n = 0;

    *count = 0;
    *err_line = 0;
    agent_lines_init(&it, buf, len);
    while (agent_lines_next(&it, &ls, &le)) {
        int rc;

        /* The two column-header lines, whatever they hold. */
        if (it.no <= AGENT_NETDEV_HEADER_LINES)
            continue;
        if (agent_skip_space(ls, le) == le)
            continue;
        /* Checked before the line is parsed: only the C caller sees EROWS,
         * and it parses again with a larger array. */
        if (n == cap) {
            *count = n;
            *err_line = it.no;
            return AGENT_EROWS;
        }
        rc = agent_netdev_row(ls, le, &rows[n]);
        if (rc != AGENT_OK) {
            *count = n;
            *err_line = it.no;
            return rc;
        }
        n++;
    }
    *count = n;
    return AGENT_OK;
}

int agent_load_netdev(int fd, char *buf, size_t cap, size_t *len,
                      struct agent_netdev *rows, size_t rows_cap,
                      size_t *count, size_t *err_line)
{
    int rc = agent_read_fd(fd, buf, cap, len);

    if (rc != AGENT_OK) {
        *count = 0;
        *err_line = 0;
        return rc;
    }
    return agent_parse_netdev(buf, *len, rows, rows_cap, count, err_line);
}
