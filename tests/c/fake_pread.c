/* A pread(2) that the test binary links in front of libc's, so that
 * agent_read_fd can be tested against what a regular file never does but
 * /proc and signals can: EINTR, reads shorter than asked (seq_file hands out
 * a page at a time), and a failure after part of the file was read.
 *
 * Off (agent_test_pread.mode == 0) it is the plain system call.  The whole
 * destination range is written first, so that ASan still checks that the
 * caller's (buf, count) lies inside its buffer, as its own pread interceptor
 * would (the kernel's write is invisible to ASan).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "fake_pread.h"

struct agent_test_pread agent_test_pread;

ssize_t pread(int fd, void *buf, size_t count, off_t offset)
{
    struct agent_test_pread *f = &agent_test_pread;

    if (count)
        memset(buf, 0xcc, count);
    if (f->mode) {
        f->calls++;
        /* Every other call is interrupted before it transfers anything. */
        if ((f->mode & AGENT_TEST_PREAD_EINTR) && f->calls % 2 == 1) {
            f->eintr++;
            errno = EINTR;
            return -1;
        }
        if ((f->mode & AGENT_TEST_PREAD_FAIL_AT) && offset >= f->fail_at) {
            errno = EIO;
            return -1;
        }
        if ((f->mode & AGENT_TEST_PREAD_SHORT) && count > f->max_chunk)
            count = f->max_chunk;
    }
    return (ssize_t)syscall(SYS_pread64, fd, buf, count, offset);
}
