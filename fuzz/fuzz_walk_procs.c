/* libFuzzer target for agent_walk_procs (csrc/walk_procs.c).
 *
 * The input is written as the stat file of process 1 and of its thread 2
 * (1/stat, 1/task/1/stat, 1/task/2/stat) in a private directory (under
 * /dev/shm when it is there: a file write per input), then walked with and
 * without AGENT_PROCS_THREADS, with row and comm arrays that are heap blocks
 * of exactly the size passed (ASan catches a write past them).  The
 * contract of agent_api.h is checked; a broken rule aborts:
 *  - the status is OK, EFORMAT or ERANGE (never EIO on a readable tree),
 *    err_pid names process 1 on an error, err_tid 0 or 2;
 *  - on OK: one row, pid 1, comm inside comms and equal to the input's bytes
 *    between the first '(' and the last ')', state the byte after it;
 *  - caps 0 rows / 0 comm bytes give EROWS / ETRUNC with the same count and
 *    comms_len as the full walk. */
#define _GNU_SOURCE

#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__,        \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

static char root[256];
static int rootfd = -1;

/* The tree goes when the fuzzer exits (libFuzzer ends with exit()). */
static void cleanup(void)
{
    static const char *const files[] = { "1/task/2/stat", "1/task/1/stat", "1/stat", "1/task/2", "1/task/1",
                                         "1/task", "1" };
    size_t i;

    for (i = 0; i < sizeof files / sizeof files[0]; i++)
        unlinkat(rootfd, files[i], i < 3 ? 0 : AT_REMOVEDIR);
    close(rootfd);
    rmdir(root);
}

static void setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    char path[512];

    snprintf(root, sizeof root, "%s/fuzz-walk-procs.XXXXXX", base);
    REQUIRE(mkdtemp(root) != NULL);
    snprintf(path, sizeof path, "%s/1", root);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/1/task", root);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/1/task/1", root);
    REQUIRE(mkdir(path, 0755) == 0);
    snprintf(path, sizeof path, "%s/1/task/2", root);
    REQUIRE(mkdir(path, 0755) == 0);
    rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    REQUIRE(rootfd >= 0);
    atexit(cleanup);
}

static void put(const char *rel, const uint8_t *data, size_t size)
{
    int fd = openat(rootfd, rel, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

    REQUIRE(fd >= 0);
    REQUIRE(size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);
}

static void walk_once(int flags, size_t rows_cap, size_t comms_cap, int *rc, struct agent_proc_walk *w,
                      struct agent_proc *row_out, char *comm_out)
{
    struct agent_proc *rows = malloc(rows_cap ? rows_cap * sizeof *rows : 1);
    char *comms = malloc(comms_cap ? comms_cap : 1);

    REQUIRE(rows && comms);
    *rc = agent_walk_procs(rootfd, flags, rows, rows_cap, comms, comms_cap, w);
    if (*rc == AGENT_OK && rows_cap) {
        *row_out = rows[0];
        REQUIRE(rows[0].comm_off + rows[0].comm_len <= w->comms_len && w->comms_len <= comms_cap);
        memcpy(comm_out, comms + rows[0].comm_off, rows[0].comm_len);
    }
    free(rows);
    free(comms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char comm[AGENT_PROC_STAT_MAX];
    struct agent_proc_walk w, w2;
    struct agent_proc row = { 0 };
    int flags, rc, rc2;

    if (rootfd < 0)
        setup();
    put("1/stat", data, size);
    put("1/task/1/stat", data, size);
    put("1/task/2/stat", data, size);
    for (flags = 0; flags <= AGENT_PROCS_THREADS; flags += AGENT_PROCS_THREADS) {
        walk_once(flags, 1, AGENT_PROC_STAT_MAX, &rc, &w, &row, comm);
        REQUIRE(rc == AGENT_OK || rc == AGENT_EFORMAT || rc == AGENT_ERANGE);
        if (rc != AGENT_OK) {
            REQUIRE(w.err_pid == 1 && (w.err_tid == 0 || w.err_tid == 2));
            continue;
        }
        {
            const uint8_t *l = memchr(data, '(', size);
            const uint8_t *r = data + size;

            REQUIRE(l != NULL);
            while (r > l && r[-1] != ')')
                r--;
            REQUIRE(r > l + 1);
            REQUIRE(row.pid == 1 && w.count == 1);
            REQUIRE(row.comm_len == (size_t)(r - 1 - (l + 1)) && memcmp(comm, l + 1, row.comm_len) == 0);
            REQUIRE(w.states[row.state] == 1);
        }
        walk_once(flags, 0, AGENT_PROC_STAT_MAX, &rc2, &w2, &row, comm);
        REQUIRE(rc2 == AGENT_EROWS && w2.count == w.count && w2.comms_len == w.comms_len);
        if (w.comms_len > 0) {
            walk_once(flags, 1, w.comms_len - 1, &rc2, &w2, &row, comm);
            REQUIRE(rc2 == AGENT_ETRUNC && w2.comms_len == w.comms_len);
        }
    }
    return 0;
}
