/* /proc/diskstats -> rows of struct agent_diskstats
 * (docs/PARSERS.md, "/proc/diskstats"; Documentation/admin-guide/iostats.rst). */
#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <string.h>

/* Fields after major, minor and name: 11 on every kernel since 2.6.25, 15
 * with discards (4.18), 17 with flushes (5.5); 4 on 2.6 partition lines. */
enum {
    AGENT_DISK_HEAD = 3,
    AGENT_DISK_OLD_PARTITION = 4,
    AGENT_DISK_MIN_STATS = 11,
    AGENT_DISK_MAX_FIELDS = AGENT_DISK_HEAD + AGENT_DISK_NFIELDS
};

static const size_t agent_disk_off[AGENT_DISK_NFIELDS] = {
    offsetof(struct agent_diskstats, reads_completed),
    offsetof(struct agent_diskstats, reads_merged),
    offsetof(struct agent_diskstats, sectors_read),
    offsetof(struct agent_diskstats, read_time_ms),
    offsetof(struct agent_diskstats, writes_completed),
    offsetof(struct agent_diskstats, writes_merged),
    offsetof(struct agent_diskstats, sectors_written),
    offsetof(struct agent_diskstats, write_time_ms),
    offsetof(struct agent_diskstats, io_in_progress),
    offsetof(struct agent_diskstats, io_time_ms),
    offsetof(struct agent_diskstats, weighted_io_time_ms),
    offsetof(struct agent_diskstats, discards_completed),
    offsetof(struct agent_diskstats, discards_merged),
    offsetof(struct agent_diskstats, sectors_discarded),
    offsetof(struct agent_diskstats, discard_time_ms),
    offsetof(struct agent_diskstats, flushes_completed),
    offsetof(struct agent_diskstats, flush_time_ms),
};

/* The 2.6 partition layout's 4 stats land on these bits. */
static const unsigned char agent_disk_old_bits[AGENT_DISK_OLD_PARTITION] = {
    AGENT_DISK_READS_COMPLETED, AGENT_DISK_SECTORS_READ,
    AGENT_DISK_WRITES_COMPLETED, AGENT_DISK_SECTORS_WRITTEN,
};

/* One non-blank line [p, e), p at its first field.  The steps of the grammar
 * run in order (field count, major/minor, name, stats count, stats), but the
 * line is scanned once: the first error of the head (major, minor, name) and
 * the first error of the stats are held until the field count is known. */
static int agent_disk_row(const char *p, const char *e, struct agent_diskstats *row)
{
    uint64_t stats[AGENT_DISK_NFIELDS];
    int head_err = AGENT_OK, stats_err = AGENT_OK;
    size_t nf = 0, s, i;

    memset(row, 0, sizeof *row);
    while (p < e && nf < AGENT_DISK_MAX_FIELDS) {
        const char *fe;
        int rc;

        if (nf == 0) {
            rc = agent_scan_counter(p, e, &fe, &row->major);
        } else if (nf == 1) {
            rc = agent_scan_counter(p, e, &fe, &row->minor);
        } else if (nf == 2) {
            size_t n;

            fe = agent_field_end(p, e);
            n = (size_t)(fe - p);
            if (n > AGENT_NAME_MAX) {
                rc = AGENT_ENAME;
            } else {
                memcpy(row->name, p, n);
                row->name_len = n;
                rc = AGENT_OK;
            }
        } else {
            rc = agent_scan_counter(p, e, &fe, &stats[nf - AGENT_DISK_HEAD]);
            if (rc != AGENT_OK && stats_err == AGENT_OK)
                stats_err = rc;
            rc = AGENT_OK;
        }
        if (rc != AGENT_OK && head_err == AGENT_OK)
            head_err = rc;
        nf++;
        p = agent_skip_space(fe, e);
    }
    /* Stopping at 3 + 17 fields is enough: s >= 17 is a valid count and
     * fields after the 17th are ignored. */
    if (nf < AGENT_DISK_HEAD)
        return AGENT_EFORMAT;
    if (head_err != AGENT_OK)
        return head_err;
    s = nf - AGENT_DISK_HEAD;
    if (s != AGENT_DISK_OLD_PARTITION && s < AGENT_DISK_MIN_STATS)
        return AGENT_EFORMAT;
    if (stats_err != AGENT_OK)
        return stats_err;
    if (s == AGENT_DISK_OLD_PARTITION) {
        for (i = 0; i < AGENT_DISK_OLD_PARTITION; i++) {
            unsigned b = agent_disk_old_bits[i];

            agent_store_u64(row, agent_disk_off[b], stats[i]);
            row->present |= (uint64_t)1 << b;
        }
    } else {
        for (i = 0; i < s; i++) {
            agent_store_u64(row, agent_disk_off[i], stats[i]);
            row->present |= (uint64_t)1 << i;
        }
    }
    return AGENT_OK;
}

int agent_parse_diskstats(const char *buf, size_t len,
                          struct agent_diskstats *rows, size_t cap,
                          size_t *count, size_t *err_line)
{
    struct agent_lines it;
    const char *ls, *le;
    size_t n = 0;

    *count = 0;
    *err_line = 0;
    agent_lines_init(&it, buf, len);
    while (agent_lines_next(&it, &ls, &le)) {
        const char *p = agent_skip_space(ls, le);
        int rc;

        if (p == le)
            continue;
        /* Checked before the line is parsed: only the C caller sees EROWS,
         * and it parses again with a larger array. */
        if (n == cap) {
            *count = n;
            *err_line = it.no;
            return AGENT_EROWS;
        }
        rc = agent_disk_row(p, le, &rows[n]);
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

int agent_load_diskstats(int fd, char *buf, size_t cap, size_t *len,
                         struct agent_diskstats *rows, size_t rows_cap,
                         size_t *count, size_t *err_line)
{
    int rc = agent_read_fd(fd, buf, cap, len);

    if (rc != AGENT_OK) {
        *count = 0;
        *err_line = 0;
        return rc;
    }
    return agent_parse_diskstats(buf, *len, rows, rows_cap, count, err_line);
}
