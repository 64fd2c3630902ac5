/* agent_walk_procs under ASan and UBSan: trees written into a temporary
 * directory (row and comm buffers are heap blocks of exactly the size
 * passed, so a write past either is caught), every prefix of a real stat
 * line, buffers too small by one, malformed and oversized files, a thread
 * whose stat is gone, and this machine's /proc.
 *
 * Exit status 0 when every check passed, 1 otherwise. */
#define _GNU_SOURCE /* mkdtemp, nftw */

#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_TAIL " 1 5 5 0 -1 4194304 100 0 0 0 %s %s 0 0 20 0 %s 0 %s 10485760 %s 18446744073709551615" \
                  " 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

static int run, failed;

static void check(int ok, const char *name, const char *what)
{
    run++;
    if (!ok) {
        failed++;
        fprintf(stderr, "FAIL walk_procs/%s: %s\n", name, what);
    }
}

static void write_file(const char *dir, const char *rel, const char *data, size_t len)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, rel);
    f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(2);
    }
}

static void make_dir(const char *dir, const char *rel)
{
    char path[1024];

    snprintf(path, sizeof path, "%s/%s", dir, rel);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(2);
    }
}

/* A process directory with its stat (comm, state, threads, utime, stime,
 * start, rss) and task/PID. */
static void make_proc(const char *root, unsigned pid, const char *comm, size_t comm_len, char state,
                      const char *threads, const char *utime, const char *start, const char *rss)
{
    char rel[256], line[8192];
    int n;

    snprintf(rel, sizeof rel, "%u", pid);
    make_dir(root, rel);
    snprintf(rel, sizeof rel, "%u/task", pid);
    make_dir(root, rel);
    snprintf(rel, sizeof rel, "%u/task/%u", pid, pid);
    make_dir(root, rel);
    n = snprintf(line, sizeof line, "%u (", pid);
    memcpy(line + n, comm, comm_len);
    n += (int)comm_len;
    n += snprintf(line + n, sizeof line - (size_t)n, ") %c", state);
    n += snprintf(line + n, sizeof line - (size_t)n, LINE_TAIL, utime, "3", threads, start, rss);
    snprintf(rel, sizeof rel, "%u/stat", pid);
    write_file(root, rel, line, (size_t)n);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *root)
{
    nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct result {
    int rc;
    struct agent_proc_walk walk;
    struct agent_proc *rows;
    char *comms;
};

/* One walk with heap blocks of exactly rows_cap rows and comms_cap bytes. */
static struct result walk(const char *root, int flags, size_t rows_cap, size_t comms_cap)
{
    struct result r = { .rows = malloc(rows_cap ? rows_cap * sizeof(struct agent_proc) : 1),
                        .comms = malloc(comms_cap ? comms_cap : 1) };
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || !r.rows || !r.comms) {
        perror(root);
        exit(2);
    }
    r.rc = agent_walk_procs(fd, flags, r.rows, rows_cap, r.comms, comms_cap, &r.walk);
    close(fd);
    return r;
}

static void release(struct result *r)
{
    free(r->rows);
    free(r->comms);
}

static const struct agent_proc *find(const struct result *r, uint64_t pid)
{
    for (uint64_t i = 0; i < r->walk.count; i++)
        if (r->rows[i].pid == pid)
            return &r->rows[i];
    return NULL;
}

static int comm_is(const struct result *r, const struct agent_proc *p, const char *s, size_t len)
{
    return p && p->comm_len == len && memcmp(r->comms + p->comm_off, s, len) == 0;
}

static void test_tree(const char *root)
{
    static const char nl[] = "new\nline";
    static const char paren[] = "a) R 1 2 (b";
    char line[512];
    struct result r, small;
    const struct agent_proc *p;
    size_t cap;

    make_proc(root, 1, "init", 4, 'S', "1", "10", "5", "100");
    make_proc(root, 2, nl, sizeof nl - 1, 'R', "1", "20", "6", "0");
    make_proc(root, 3, paren, sizeof paren - 1, 'Z', "1", "18446744073709551615", "7", "3");
    make_proc(root, 4, "", 0, 'I', "1", "0", "8", "0");
    make_proc(root, 9, "pool", 4, 'S', "3", "500", "9", "42");
    make_dir(root, "9/task/10");
    make_dir(root, "9/task/11");  /* a thread gone before its stat is read */
    snprintf(line, sizeof line, "10 (pool) D" LINE_TAIL, "1", "1", "3", "9", "42");
    write_file(root, "9/task/10/stat", line, strlen(line));
    make_dir(root, "77");          /* a process gone before its stat is read */
    make_dir(root, "self");
    make_dir(root, "012");

    r = walk(root, AGENT_PROCS_THREADS, 64, 4096);
    check(r.rc == AGENT_OK, "tree", "status");
    check(r.walk.count == 5, "tree", "five processes");
    p = find(&r, 1);
    check(p && p->state == 'S' && p->threads == 1 && p->utime == 10 && p->stime == 3 && p->starttime == 5 &&
          p->rss_pages == 100 && comm_is(&r, p, "init", 4), "tree", "pid 1");
    check(comm_is(&r, find(&r, 2), nl, sizeof nl - 1), "tree", "newline in comm");
    p = find(&r, 3);
    check(comm_is(&r, p, paren, sizeof paren - 1) && p->state == 'Z' && p->utime == UINT64_MAX,
          "tree", "comm ends at the last ')'");
    check(comm_is(&r, find(&r, 4), "", 0), "tree", "empty comm");
    check(!find(&r, 77) && !find(&r, 12), "tree", "gone and non-canonical skipped");
    check(r.walk.states['S'] == 2 && r.walk.states['R'] == 1 && r.walk.states['Z'] == 1 && r.walk.states['I'] == 1,
          "tree", "process states");
    check(r.walk.thread_states['S'] == 2 && r.walk.thread_states['D'] == 1 && r.walk.thread_states['R'] == 1 &&
          r.walk.thread_states['Z'] == 1 && r.walk.thread_states['I'] == 1, "tree", "thread states");
    check(r.walk.comms_len == 4 + sizeof nl - 1 + sizeof paren - 1 + 0 + 4, "tree", "comms_len");

    /* Every rows cap below the count: EROWS, the total counted, the rows
     * stored equal to the full walk's. */
    for (cap = 0; cap < 5; cap++) {
        small = walk(root, AGENT_PROCS_THREADS, cap, 4096);
        check(small.rc == AGENT_EROWS && small.walk.count == 5 && small.walk.comms_len == r.walk.comms_len,
              "rows", "EROWS with the whole count");
        check(memcmp(small.rows, r.rows, cap * sizeof *r.rows) == 0, "rows", "stored rows as the full walk's");
        release(&small);
    }
    for (cap = 0; cap < r.walk.comms_len; cap++) {
        small = walk(root, 0, 64, cap);
        check(small.rc == AGENT_ETRUNC && small.walk.comms_len == r.walk.comms_len, "comms", "ETRUNC with the size");
        release(&small);
    }
    small = walk(root, 0, 5, r.walk.comms_len);
    check(small.rc == AGENT_OK && small.walk.thread_states['S'] == 0, "exact", "exact caps fit; no thread flag");
    release(&small);
    release(&r);

    /* A malformed thread stat names the process and the thread. */
    write_file(root, "9/task/10/stat", "10 (pool) DD 1\n", 15);
    r = walk(root, AGENT_PROCS_THREADS, 64, 4096);
    check(r.rc == AGENT_EFORMAT && r.walk.err_pid == 9 && r.walk.err_tid == 10, "errors", "thread EFORMAT");
    release(&r);
    r = walk(root, 0, 64, 4096);
    check(r.rc == AGENT_OK, "errors", "threads not read without the flag");
    release(&r);
}

static void test_errors(const char *root)
{
    static char big[AGENT_PROC_STAT_MAX + 10];
    struct result r;

    make_proc(root, 5, "ok", 2, 'S', "1", "1", "1", "1");
    make_proc(root, 6, "x", 1, 'S', "1", "1", "1", "99999999999999999999");
    r = walk(root, 0, 8, 64);
    check(r.rc == AGENT_ERANGE && r.walk.err_pid == 6 && r.walk.err_tid == 0, "errors", "ERANGE names the pid");
    release(&r);
    memset(big, 'x', sizeof big);
    memcpy(big, "6 (", 3);
    big[sizeof big - 2] = ')';
    write_file(root, "6/stat", big, AGENT_PROC_STAT_MAX);
    r = walk(root, 0, 8, 64);
    check(r.rc == AGENT_EFORMAT && r.walk.err_pid == 6, "errors", "a 4096-byte stat is refused");
    release(&r);
    {
        char path[1024];

        snprintf(path, sizeof path, "%s/6/stat", root);
        remove(path);
        make_dir(root, "6/stat"); /* read(2) of a directory: EISDIR */
    }
    r = walk(root, 0, 8, 64);
    check(r.rc == AGENT_EIO && r.walk.err_pid == 6 && r.walk.err == EISDIR, "errors", "EIO with errno");
    release(&r);
}

/* Every prefix of a kernel's stat line: OK or EFORMAT, never anything read
 * or written out of bounds, comm within the file. */
static void test_prefixes(const char *root)
{
    static const char real[] = "1 (process_api) S 0 0 0 0 -1 4194560 74373 269218007 0 31173 541 2132 779432 "
                               "221211 10 -10 18 0 24 53096448 3346 18446744073709551615 1 1 0 0 0 0 0 4096 "
                               "1256 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
    size_t len;

    make_dir(root, "1");
    for (len = 0; len <= sizeof real - 1; len++) {
        struct result r;

        write_file(root, "1/stat", real, len);
        r = walk(root, 0, 1, 64);
        check(r.rc == AGENT_OK || r.rc == AGENT_EFORMAT, "prefix", "status");
        if (r.rc == AGENT_OK) {
            check(r.rows[0].comm_len == 11 && r.rows[0].utime == 541 && r.rows[0].rss_pages > 0, "prefix", "fields");
            check(r.rows[0].comm_off + r.rows[0].comm_len <= r.walk.comms_len, "prefix", "comm bounds");
        }
        release(&r);
    }
}

static void test_live(void)
{
    struct result r = walk("/proc", AGENT_PROCS_THREADS, 65536, 65536 * 64);
    const struct agent_proc *me;

    check(r.rc == AGENT_OK && r.walk.count > 0, "live", "walk of /proc");
    me = find(&r, (uint64_t)getpid());
    check(me && me->state == 'R' && me->threads >= 1, "live", "this process, running");
    release(&r);
}

int main(void)
{
    char tmpl[] = "/tmp/agent-walk-procs.XXXXXX";
    char *root = mkdtemp(tmpl);
    char sub[512];

    if (!root) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(sub, sizeof sub, "%s/a", root);
    mkdir(sub, 0755);
    test_tree(sub);
    snprintf(sub, sizeof sub, "%s/b", root);
    mkdir(sub, 0755);
    test_errors(sub);
    snprintf(sub, sizeof sub, "%s/c", root);
    mkdir(sub, 0755);
    test_prefixes(sub);
    test_live();
    remove_tree(root);
    printf("walk_procs: %d checks, %d failed\n", run, failed);
    return failed ? 1 : 0;
}
