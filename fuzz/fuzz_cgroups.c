/* libFuzzer targets for the cgroup v2 walker (csrc/walk_cgroups.c).
 *
 * fuzz/run.sh builds this file twice:
 *  -DFUZZ_CGROUP=0 (target cgroup_file): the first input byte picks the file
 *   (AGENT_CGROUP_FILE_*), the rest is its content for
 *   agent_parse_cgroup_file;
 *  -DFUZZ_CGROUP=1 (target cgroup_walk): the input is a small tree, records
 *   "path\0content\0" (a path ending in "/" is a directory), written under a
 *   directory of this process's own, then walked by agent_walk_cgroups.
 *
 * Besides ASan and UBSan (every buffer is a heap block of exactly the size
 * passed), the contract of agent_api.h aborts when broken:
 *  - the status is 0 or one the function documents;
 *  - cgroup_file: the row is the same whether it was pre-filled with 0x00
 *    or 0xff; absent fields are 0; io caps 0..3 agree with a large one
 *    (EROWS exactly when the large run has more devices than the cap);
 *  - cgroup_walk: counts within caps, every offset inside names, every
 *    row's io and net ranges inside io and net, and a second walk with the
 *    exact sizes the first needed (net excepted, see below) gives the same
 *    bytes. */
#define _GNU_SOURCE

#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUZZ_CGROUP
#error "compile with -DFUZZ_CGROUP=<0|1>"
#endif

#define REQUIRE(cond)                                                        \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: contract broken: %s\n", __FILE__,        \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)

enum { BIG_IO = 4096 };

#if FUZZ_CGROUP == 0

static int parse(int which, const uint8_t *data, size_t size, size_t io_cap, int fill,
                 struct agent_cgroup *row, struct agent_cgroup_io **io_out, size_t *count)
{
    struct agent_cgroup_io *io = malloc((io_cap ? io_cap : 1) * sizeof *io);
    int rc;

    memset(row, fill, sizeof *row);
    memset(io, fill, (io_cap ? io_cap : 1) * sizeof *io);
    rc = agent_parse_cgroup_file(which, (const char *)data, size, row, io, io_cap, count);
    *io_out = io;
    return rc;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct agent_cgroup a, b;
    struct agent_cgroup_io *ia, *ib;
    size_t na, nb, cap;
    int which, ra, rb, bit;
    uint8_t *copy;

    if (size == 0)
        return 0;
    which = data[0] % (AGENT_CGROUP_NFILES + 1);  /* one past the end: EFORMAT */
    size--;
    copy = size ? malloc(size) : NULL;
    if (size)
        memcpy(copy, data + 1, size);

    ra = parse(which, copy, size, BIG_IO, 0x00, &a, &ia, &na);
    rb = parse(which, copy, size, BIG_IO, 0xff, &b, &ib, &nb);
    REQUIRE(ra == AGENT_OK || ra == AGENT_EFORMAT || ra == AGENT_ERANGE);
    REQUIRE(ra == rb && na == nb && na <= BIG_IO);
    if (ra == AGENT_OK) {
        REQUIRE(memcmp(&a, &b, sizeof a) == 0);
        REQUIRE(memcmp(ia, ib, na * sizeof *ia) == 0);
        REQUIRE(a.io_count == na);
        for (bit = 0; bit < AGENT_CGROUP_NFIELDS; bit++)
            REQUIRE((a.present >> bit & 1) || a.values[bit] == 0);
        REQUIRE(a.present >> AGENT_CGROUP_NFIELDS == 0);
    }
    for (cap = 0; cap < 4; cap++) {
        struct agent_cgroup c;
        struct agent_cgroup_io *ic;
        size_t nc;
        int rc = parse(which, copy, size, cap, 0x5a, &c, &ic, &nc);

        REQUIRE(nc <= cap);
        if (ra == AGENT_OK && na <= cap) {
            REQUIRE(rc == AGENT_OK && nc == na && memcmp(ic, ia, nc * sizeof *ic) == 0);
        } else if (ra == AGENT_OK) {
            REQUIRE(rc == AGENT_EROWS && nc == cap && memcmp(ic, ia, nc * sizeof *ic) == 0);
        } else {
            REQUIRE(rc == ra || rc == AGENT_EROWS);
        }
        free(ic);
    }
    free(ia);
    free(ib);
    free(copy);
    return 0;
}

#else

static char root[64];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 ? 0 : -1;
}

static void remove_tree(const char *path)
{
    if (nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && access(path, F_OK) == 0)
        abort();
}

static void cleanup(void)
{
    remove_tree(root);
}

/* Build the tree the input describes; names with "..", or starting with
 * "/", are made harmless so nothing lands outside root. */
static void build(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    int rootfd;

    remove_tree(root);
    if (mkdir(root, 0700) != 0)
        abort();
    rootfd = open(root, O_RDONLY | O_DIRECTORY);
    if (rootfd < 0)
        abort();
    while (pos < size) {
        const char *path = (const char *)data + pos;
        size_t plen = strnlen(path, size - pos), clen;
        const char *content;
        char name[256];
        size_t i;

        if (pos + plen >= size)
            break;
        content = path + plen + 1;
        pos += plen + 1;
        clen = strnlen(content, size - pos);
        pos += clen + (pos + clen < size);
        if (plen == 0 || plen >= sizeof name)
            continue;
        memcpy(name, path, plen);
        name[plen] = '\0';
        for (i = 0; i < plen; i++)
            if (name[i] == '.' && i + 1 < plen && name[i + 1] == '.')
                name[i] = '_';
        while (name[0] == '/')
            memmove(name, name + 1, strlen(name));
        if (!name[0])
            continue;
        /* Every parent directory, then the file or the directory. */
        for (i = 1; i < strlen(name); i++) {
            if (name[i] == '/') {
                name[i] = '\0';
                (void)mkdirat(rootfd, name, 0700);
                name[i] = '/';
            }
        }
        if (name[strlen(name) - 1] == '/') {
            (void)mkdirat(rootfd, name, 0700);
        } else {
            int fd = openat(rootfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);

            if (fd >= 0) {
                if (clen && write(fd, content, clen) < 0)
                    abort();
                close(fd);
            }
        }
    }
    close(rootfd);
}

struct walk {
    int rc;
    char *names;
    size_t names_len;
    struct agent_cgroup *rows;
    size_t count;
    struct agent_cgroup_io *io;
    size_t io_count;
    struct agent_netdev *net;
    size_t net_count;
    uint64_t err_file;
};

static struct walk walk(size_t names_cap, size_t rows_cap, size_t io_cap, size_t net_cap, size_t buf_cap)
{
    struct walk w;
    char *buf = malloc(buf_cap ? buf_cap : 1);
    int fd = open(root, O_RDONLY | O_DIRECTORY);
    size_t i;

    if (fd < 0)
        abort();
    w.names = malloc(names_cap ? names_cap : 1);
    w.rows = malloc((rows_cap ? rows_cap : 1) * sizeof *w.rows);
    w.io = malloc((io_cap ? io_cap : 1) * sizeof *w.io);
    w.net = malloc((net_cap ? net_cap : 1) * sizeof *w.net);
    /* The tree is also the procfs root: "<pid>/net/dev" records feed the
     * network part. */
    w.rc = agent_walk_cgroups(fd, fd, w.names, names_cap, &w.names_len, w.rows, rows_cap, &w.count,
                              w.io, io_cap, &w.io_count, w.net, net_cap, &w.net_count, buf, buf_cap, &w.err_file);
    close(fd);
    free(buf);
    REQUIRE(w.rc == AGENT_OK || w.rc == AGENT_ETRUNC || w.rc == AGENT_EROWS || w.rc == AGENT_EFORMAT
            || w.rc == AGENT_ERANGE || w.rc == AGENT_EIO);
    REQUIRE(w.count <= rows_cap && w.names_len <= names_cap && w.io_count <= io_cap && w.net_count <= net_cap);
    REQUIRE(w.err_file < AGENT_CGROUP_NFILES);
    for (i = 0; i < w.count; i++) {
        const struct agent_cgroup *r = &w.rows[i];

        REQUIRE(r->runtime >= AGENT_CGROUP_DOCKER && r->runtime <= AGENT_CGROUP_NSPAWN);
        REQUIRE(r->path_len > 0 && r->path_off + r->path_len <= w.names_len);
        REQUIRE(r->id_off >= r->path_off && r->id_off + r->id_len <= r->path_off + r->path_len);
        REQUIRE(r->pod_len == 0 || (r->pod_off >= r->path_off && r->pod_off + r->pod_len <= r->path_off + r->path_len));
        REQUIRE(r->io_first + r->io_count <= w.io_count);
        REQUIRE(r->net_first + r->net_count <= w.net_count);
    }
    return w;
}

static void drop(struct walk *w)
{
    free(w->names);
    free(w->rows);
    free(w->io);
    free(w->net);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct walk a, b;

    if (!root[0]) {
        snprintf(root, sizeof root, "/tmp/fuzz-cgroups-%ld", (long)getpid());
        atexit(cleanup);
    }
    build(data, size);
    a = walk(1 << 16, 256, 256, 256, 1 << 16);
    if (a.rc == AGENT_OK) {
        /* net keeps the first walk's size: a net/dev that turns out
         * malformed gives no interfaces, but only once its rows fit (the
         * parser finds a bad line after the rows before it), so exact room
         * for the interfaces kept can be too little (agent_api.h). */
        b = walk(a.names_len, a.count, a.io_count, 256, 1 << 16);
        REQUIRE(b.rc == AGENT_OK && b.count == a.count && b.names_len == a.names_len && b.io_count == a.io_count
                && b.net_count == a.net_count);
        REQUIRE(memcmp(a.net, b.net, a.net_count * sizeof *a.net) == 0);
        REQUIRE(memcmp(a.names, b.names, a.names_len) == 0);
        REQUIRE(memcmp(a.rows, b.rows, a.count * sizeof *a.rows) == 0);
        REQUIRE(memcmp(a.io, b.io, a.io_count * sizeof *a.io) == 0);
        drop(&b);
    }
    drop(&a);
    return 0;
}

#endif
