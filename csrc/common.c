/* The ABI handshake, the one reader of /proc files, and the shared tables. */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <errno.h>
#include <limits.h>
#include <sys/types.h>
#include <unistd.h>

const double agent_pow10[16] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7,
    1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15
};

int agent_abi_version(void)
{
    return AGENT_ABI_VERSION;
}

/* pread from offset 0, so a /proc file kept open across scrapes is re-read
 * whole, until a read returns 0: st_size is 0 for /proc files and a short
 * read does not mean end of file (seq_file hands out a page at a time). */
int agent_read_fd(int fd, char *buf, size_t cap, size_t *len)
{
    size_t n = 0;
    char probe;

    *len = 0;
    while (n < cap) {
        size_t want = cap - n;
        ssize_t r;

        if (want > (size_t)SSIZE_MAX)
            want = (size_t)SSIZE_MAX;
        r = pread(fd, buf + n, want, (off_t)n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            *len = n;
            return AGENT_EIO;
        }
        if (r == 0) {
            *len = n;
            return AGENT_OK;
        }
        n += (size_t)r;
    }
    *len = n;
    /* The buffer is full: one byte more tells a file of exactly cap bytes
     * (fits) from a longer one (the caller must grow the buffer). */
    for (;;) {
        ssize_t r = pread(fd, &probe, 1, (off_t)n);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            return AGENT_EIO;
        }
        return r == 0 ? AGENT_OK : AGENT_ETRUNC;
    }
}
