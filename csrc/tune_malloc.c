/* glibc's allocator, tuned for a scrape loop.
 *
 * A dense host's scrape allocates a few buffers of ~1 MB (the rendered
 * body, its encoding, the gzip output) and frees them.  With glibc's
 * defaults each such buffer either comes from mmap or grows the heap, which
 * is trimmed again when it is freed, so every scrape pays the page faults
 * anew: measured at ~1 ms of a 4.4 ms scrape (2,000 interfaces).  Serving
 * buffers up to `mmap_threshold` from the heap and trimming it only past
 * `trim_threshold` keeps those pages mapped from one scrape to the next. */
#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"

#include <limits.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

int agent_tune_malloc(size_t mmap_threshold, size_t trim_threshold)
{
#ifdef __GLIBC__
    if (mmap_threshold > (size_t)INT_MAX || trim_threshold > (size_t)INT_MAX)
        return AGENT_ERANGE;
    if (mallopt(M_MMAP_THRESHOLD, (int)mmap_threshold) != 1)
        return AGENT_EIO;
    if (mallopt(M_TRIM_THRESHOLD, (int)trim_threshold) != 1)
        return AGENT_EIO;
    return AGENT_OK;
#else
    (void)mmap_threshold;
    (void)trim_threshold;
    return AGENT_EMISSING; /* not glibc: nothing to tune */
#endif
}
