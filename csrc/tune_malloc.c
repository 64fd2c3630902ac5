/* glibc's allocator, tuned for a scrape loop.
 *
 * A dense host's scrape allocates a few buffers of ~1 MB (the rendered
 * body, its encoding, the gzip output) and frees them.  With glibc's
 * defaults each such buffer either comes from mmap or grows the heap, which
 * is trimmed again when it is freed, so every scrape pays the page faults
 * anew: measured at ~1 ms of a 4.4 ms scrape (2,000 interfaces).  Serving
 * buffers up to `mmap_threshold` from the heap and trimming it only past
 * `trim_threshold` keeps those pages mapped from one scrape to the next.
 *
 * And one arena (`arena_max`) for every thread: glibc gives each new
 * thread an arena of its own, so the scrape's buffers, allocated in a
 * connection's thread, were mapped a second time beside the start-up
 * collection's in the main arena (dense host: 22.0 -> 20.6 MiB RSS).  The
 * agent's threads take turns under Python's GIL, so they hardly ever
 * contend for one arena's lock.
 *
 * The price of the trim threshold is that a heap grown by one oversized
 * file (100,000 interfaces: ~10 MiB of freed chunks) stays resident; the
 * loaders call agent_trim_malloc once such a file is back to normal. */
#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"

#include <limits.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

int agent_tune_malloc(size_t mmap_threshold, size_t trim_threshold, size_t arena_max)
{
#ifdef __GLIBC__
    if (mmap_threshold > (size_t)INT_MAX || trim_threshold > (size_t)INT_MAX
        || arena_max > (size_t)INT_MAX)
        return AGENT_ERANGE;
    if (mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) != 1)
        return AGENT_EIO;
    if (mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) != 1)
        return AGENT_EIO;
    /* 0 leaves glibc's default (8 arenas a core). */
    if (arena_max > 0 && mallopt(M_ARENA_MAX, (int)arena_max) != 1)
        return AGENT_EIO;
    return AGENT_OK;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    (void)arena_max;
    return AGENT_EMISSING; /* not glibc: nothing to tune */
#endif
}

int agent_trim_malloc(size_t pad)
{
#ifdef __GLIBC__
    /* The return value only says whether anything was released. */
    (void)malloc_trim(pad);
    return AGENT_OK;
#else
    (void)pad;
    return AGENT_EMISSING;
#endif
}
