/* /proc/meminfo -> struct agent_meminfo (docs/PARSERS.md, "/proc/meminfo"). */
#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <string.h>

/* Known keys in field-enum order, with their lengths, so that a line is
 * rejected on the length (most of the ~55 kernel keys) before any memcmp. */
static const struct {
    size_t len;
    char key[16];
    size_t off;
} agent_meminfo_keys[AGENT_MEMINFO_NFIELDS] = {
    { 8, "MemTotal", offsetof(struct agent_meminfo, mem_total_kb) },
    { 7, "MemFree", offsetof(struct agent_meminfo, mem_free_kb) },
    /* Linux >= 3.14 */
    { 12, "MemAvailable", offsetof(struct agent_meminfo, mem_available_kb) },
    { 7, "Buffers", offsetof(struct agent_meminfo, buffers_kb) },
    { 6, "Cached", offsetof(struct agent_meminfo, cached_kb) },
    { 10, "SwapCached", offsetof(struct agent_meminfo, swap_cached_kb) },
    { 6, "Active", offsetof(struct agent_meminfo, active_kb) },
    { 8, "Inactive", offsetof(struct agent_meminfo, inactive_kb) },
    { 12, "Active(file)", offsetof(struct agent_meminfo, active_file_kb) },
    { 14, "Inactive(file)", offsetof(struct agent_meminfo, inactive_file_kb) },
    { 9, "SwapTotal", offsetof(struct agent_meminfo, swap_total_kb) },
    { 8, "SwapFree", offsetof(struct agent_meminfo, swap_free_kb) },
    { 5, "Dirty", offsetof(struct agent_meminfo, dirty_kb) },
    { 9, "Writeback", offsetof(struct agent_meminfo, writeback_kb) },
    { 5, "Shmem", offsetof(struct agent_meminfo, shmem_kb) },
    { 4, "Slab", offsetof(struct agent_meminfo, slab_kb) },
    { 12, "SReclaimable", offsetof(struct agent_meminfo, sreclaimable_kb) },
    { 10, "SUnreclaim", offsetof(struct agent_meminfo, sunreclaim_kb) },
};

static int agent_meminfo_key(const char *k, size_t n)
{
    int i;

    /* No known key is shorter than 4 or longer than 14 bytes. */
    if (n < 4 || n > 14)
        return -1;
    for (i = 0; i < AGENT_MEMINFO_NFIELDS; i++) {
        if (agent_meminfo_keys[i].len == n && memcmp(agent_meminfo_keys[i].key, k, n) == 0)
            return i;
    }
    return -1;
}

int agent_parse_meminfo(const char *buf, size_t len,
                        struct agent_meminfo *out, size_t *err_line)
{
    struct agent_lines it;
    const char *ls, *le;

    memset(out, 0, sizeof *out);
    *err_line = 0;
    agent_lines_init(&it, buf, len);
    while (agent_lines_next(&it, &ls, &le)) {
        const char *colon, *f, *fe;
        uint64_t v;
        int key, rc;

        if (ls == le)
            continue;
        colon = memchr(ls, ':', (size_t)(le - ls));
        if (!colon)
            continue;
        /* The key is the bytes before the first colon, untrimmed. */
        key = agent_meminfo_key(ls, (size_t)(colon - ls));
        if (key < 0)
            continue;
        /* A duplicate is reported before the value is looked at. */
        if (out->present & ((uint64_t)1 << key)) {
            *err_line = it.no;
            return AGENT_EFORMAT;
        }
        f = agent_skip_space(colon + 1, le);
        if (f == le) {
            *err_line = it.no;
            return AGENT_EFORMAT;
        }
        rc = agent_scan_counter(f, le, &fe, &v);
        if (rc != AGENT_OK) {
            *err_line = it.no;
            return rc;
        }
        agent_store_u64(out, agent_meminfo_keys[key].off, v);
        out->present |= (uint64_t)1 << key;
    }
    if (!(out->present & ((uint64_t)1 << AGENT_MEMINFO_MEM_TOTAL)))
        return AGENT_EMISSING;
    return AGENT_OK;
}

int agent_load_meminfo(int fd, char *buf, size_t cap, size_t *len,
                       struct agent_meminfo *out, size_t *err_line)
{
    int rc = agent_read_fd(fd, buf, cap, len);

    if (rc != AGENT_OK) {
        *err_line = 0;
        return rc;
    }
    return agent_parse_meminfo(buf, *len, out, err_line);
}
