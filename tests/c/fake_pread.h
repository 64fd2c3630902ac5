/* Control of the pread(2) stand-in in fake_pread.c (test binary only). */
#ifndef AGENT_TEST_FAKE_PREAD_H
#define AGENT_TEST_FAKE_PREAD_H

#include <sys/types.h>

enum {
    AGENT_TEST_PREAD_EINTR = 1,    /* every other call fails with EINTR */
    AGENT_TEST_PREAD_SHORT = 2,    /* at most max_chunk bytes per call */
    AGENT_TEST_PREAD_FAIL_AT = 4   /* EIO for any read at offset >= fail_at */
};

struct agent_test_pread {
    int mode;
    size_t max_chunk;
    off_t fail_at;
    unsigned long calls;
    unsigned long eintr;
};

extern struct agent_test_pread agent_test_pread;

#endif
