/* agent_walk_cgroups and agent_parse_cgroup_file (csrc/walk_cgroups.c) on
 * trees made here under a temporary directory, with every output buffer a
 * heap block of exactly the size passed, so ASan sees any write past it.
 * Called from test_parsers.c's main. */
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

int test_cgroups(int *run);

static int failed;
static int checks;

static void expect(int ok, const char *what)
{
    checks++;
    if (!ok) {
        failed++;
        printf("FAIL cgroups: %s\n", what);
    }
}

static void put(const char *dir, const char *name, const char *text)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    int fd = dfd < 0 ? -1 : openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");

    if (dfd >= 0)
        close(dfd);
    if (!f) {
        perror(name);
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

static void dir(char *out, size_t cap, const char *parent, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", parent, name);

    if (n < 0 || (size_t)n >= cap || mkdir(out, 0755) != 0) {
        perror(out);
        exit(2);
    }
}

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void container_files(const char *d)
{
    put(d, "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n"
                       "nr_periods 10\nnr_throttled 3\nthrottled_usec 4000\n");
    put(d, "cpu.max", "50000 100000\n");
    put(d, "memory.current", "1048576\n");
    put(d, "memory.max", "max\n");
    put(d, "memory.stat", "anon 4096\nfile 8192\ninactive_file 1024\nactive_file 7168\n");
    put(d, "memory.events", "low 0\nhigh 0\nmax 0\noom 1\noom_kill 2\n");
    put(d, "io.stat", "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n"
                      "259:0 rbytes=300 wbytes=400 rios=3 wios=4 dbytes=0 dios=0\n");
    put(d, "cpu.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=11\n"
                           "full avg10=0.00 avg60=0.00 avg300=0.00 total=12\n");
    put(d, "memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=21\n"
                              "full avg10=0.00 avg60=0.00 avg300=0.00 total=22\n");
    put(d, "io.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=31\n"
                          "full avg10=0.00 avg60=0.00 avg300=0.00 total=32\n");
    put(d, "cgroup.procs", "4242\n4243\n");
}

struct out {
    char *names;
    size_t names_cap, names_len;
    struct agent_cgroup *rows;
    size_t rows_cap, count;
    struct agent_cgroup_io *io;
    size_t io_cap, io_count;
    struct agent_netdev *net;
    size_t net_count;
    char *buf;
    size_t buf_cap;
    uint64_t err_file;
};

static int walk(const char *root, struct out *o, size_t names_cap, size_t rows_cap, size_t io_cap, size_t buf_cap)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY), rc;

    /* malloc(0) may return NULL or a unique block: both are fine for a
     * zero cap, and the exact sizes let ASan catch a write past them. */
    o->names = malloc(names_cap ? names_cap : 1);
    o->rows = malloc((rows_cap ? rows_cap : 1) * sizeof *o->rows);
    o->io = malloc((io_cap ? io_cap : 1) * sizeof *o->io);
    o->buf = malloc(buf_cap ? buf_cap : 1);
    o->names_cap = names_cap;
    o->rows_cap = rows_cap;
    o->io_cap = io_cap;
    o->buf_cap = buf_cap;
    o->net = malloc(4 * sizeof *o->net);
    rc = agent_walk_cgroups(fd, fd, o->names, names_cap, &o->names_len, o->rows, rows_cap, &o->count,
                            o->io, io_cap, &o->io_count, o->net, 4, &o->net_count, o->buf, buf_cap, &o->err_file);
    close(fd);
    return rc;
}

static void done(struct out *o)
{
    free(o->names);
    free(o->rows);
    free(o->io);
    free(o->net);
    free(o->buf);
}

static int path_is(const struct out *o, size_t i, const char *want)
{
    const struct agent_cgroup *r = &o->rows[i];

    return r->path_len == strlen(want) && memcmp(o->names + r->path_off, want, r->path_len) == 0;
}

static void test_walk(const char *top)
{
    char slice[4096], scope[4096], svc[4096], deep[4096], pod[4096], ctr[4096], payload[4096];
    struct out o;
    const struct agent_cgroup *r;
    int rc, i;

    put(top, "cgroup.controllers", "cpu io memory pids\n");
    dir(slice, sizeof slice, top, "system.slice");
    dir(svc, sizeof svc, slice, "ssh.service");
    put(svc, "cpu.stat", "usage_usec 1\n");
    dir(scope, sizeof scope, slice, "docker-" ID ".scope");
    container_files(scope);
    /* A kubelet pod (systemd driver) whose container keeps its processes
     * in crun's "container" child. */
    dir(pod, sizeof pod, top, "kubepods-besteffort-pod1234_abcd.slice");
    dir(ctr, sizeof ctr, pod, "crio-" ID ".scope");
    container_files(ctr);
    put(ctr, "cgroup.procs", "");
    dir(payload, sizeof payload, ctr, "container");
    put(payload, "cgroup.procs", "777\n");
    /* A container below AGENT_CGROUP_DEPTH_MAX levels is not walked to. */
    strcpy(deep, top);
    for (i = 0; i < AGENT_CGROUP_DEPTH_MAX; i++) {
        char next[4096];

        dir(next, sizeof next, deep, "d");
        strcpy(deep, next);
    }
    dir(ctr, sizeof ctr, deep, "libpod-" ID ".scope");
    container_files(ctr);

    {
        char proc[4096], net[4096];

        dir(proc, sizeof proc, top, "4242");
        dir(net, sizeof net, proc, "net");
        put(net, "dev", "Inter-|   Receive |  Transmit\n face |bytes packets|bytes packets\n"
                        "    lo: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
                        "  eth0: 100 2 3 4 5 6 7 8 900 10 11 12 13 14 15 16\n");
    }
    rc = walk(top, &o, 4096, 8, 8, 4096);
    expect(rc == AGENT_OK && o.count == 2, "two containers found, the one too deep left out");
    for (i = 0; i < (int)o.count; i++) {
        r = &o.rows[i];
        if (r->runtime == AGENT_CGROUP_DOCKER) {
            expect(path_is(&o, (size_t)i, "system.slice/docker-" ID ".scope"), "docker path");
            expect(r->id_len == 64 && memcmp(o.names + r->id_off, ID, 64) == 0, "docker id");
            expect(r->pod_len == 0, "no pod");
            expect(r->values[AGENT_CGROUP_USAGE_USEC] == 2500000, "usage_usec");
            expect(r->values[AGENT_CGROUP_THROTTLED_USEC] == 4000, "throttled_usec");
            expect(r->values[AGENT_CGROUP_CPU_QUOTA_USEC] == 50000, "cpu.max quota");
            expect(r->values[AGENT_CGROUP_MEMORY_MAX] == UINT64_MAX
                   && (r->present >> AGENT_CGROUP_MEMORY_MAX & 1), "memory.max max");
            expect(r->values[AGENT_CGROUP_MEMORY_INACTIVE_FILE] == 1024, "inactive_file");
            expect(r->values[AGENT_CGROUP_OOM_KILL] == 2, "oom_kill, not oom");
            expect(r->values[AGENT_CGROUP_IO_FULL_USEC] == 32, "io full total");
            expect(r->values[AGENT_CGROUP_PID] == 4242, "first pid");
            expect(r->present == ((uint64_t)1 << AGENT_CGROUP_NFIELDS) - 1, "every field present");
            expect(r->io_count == 2 && o.io[r->io_first + 1].major == 259
                   && o.io[r->io_first + 1].wbytes == 400, "io rows");
            expect(r->net_count == 2 && o.net[r->net_first + 1].rx_bytes == 100
                   && o.net[r->net_first + 1].tx_bytes == 900, "the interfaces of 4242/net/dev");
        } else {
            expect(r->runtime == AGENT_CGROUP_CRIO, "crio runtime");
            expect(r->pod_len == strlen("1234_abcd")
                   && memcmp(o.names + r->pod_off, "1234_abcd", r->pod_len) == 0, "pod uid");
            expect(r->values[AGENT_CGROUP_PID] == 777, "pid from crun's container child");
            expect(r->net_count == 0, "no 777/net/dev: no interfaces");
        }
    }
    done(&o);

    /* Buffers one short of what the tree needs. */
    rc = walk(top, &o, 4096, 1, 8, 4096);
    expect(rc == AGENT_EROWS && o.count == 1, "rows full");
    done(&o);
    rc = walk(top, &o, 4096, 8, 1, 4096);
    expect(rc == AGENT_EROWS, "io rows full");
    done(&o);
    rc = walk(top, &o, 10, 8, 8, 4096);
    expect(rc == AGENT_ETRUNC && o.count == 0, "names full");
    done(&o);
    rc = walk(top, &o, 4096, 8, 8, 16);
    expect(rc == AGENT_ETRUNC, "a file fills the scratch buffer");
    done(&o);
    rc = walk(top, &o, 0, 0, 0, 0);
    expect(rc == AGENT_EROWS || rc == AGENT_ETRUNC, "zero caps");
    done(&o);

    /* A malformed file: its container and file are named. */
    put(scope, "memory.stat", "anon 4096\nfile eight\n");
    rc = walk(top, &o, 4096, 8, 8, 4096);
    r = &o.rows[o.count - 1];
    expect(rc == AGENT_EFORMAT && o.err_file == AGENT_CGROUP_FILE_MEMORY_STAT
           && path_is(&o, o.count - 1, "system.slice/docker-" ID ".scope") && r->present == 0,
           "EFORMAT names the container and the file");
    done(&o);
    put(scope, "memory.stat", "anon 99999999999999999999\n");
    rc = walk(top, &o, 4096, 8, 8, 4096);
    expect(rc == AGENT_ERANGE && o.err_file == AGENT_CGROUP_FILE_MEMORY_STAT, "ERANGE");
    done(&o);

    /* Gone: no cpu.stat means the cgroup was removed meanwhile. */
    {
        int dfd = open(scope, O_RDONLY | O_DIRECTORY);

        expect(dfd >= 0 && unlinkat(dfd, "cpu.stat", 0) == 0, "remove cpu.stat");
        if (dfd >= 0)
            close(dfd);
    }
    rc = walk(top, &o, 4096, 8, 8, 4096);
    expect(rc == AGENT_OK && o.count == 1 && o.rows[0].runtime == AGENT_CGROUP_CRIO, "a gone container is skipped");
    done(&o);
}

static void parse_case(int which, const char *text, int want_rc, int field, uint64_t want, const char *what)
{
    struct agent_cgroup row;
    struct agent_cgroup_io *io = malloc(2 * sizeof *io);
    size_t len = strlen(text), n = 0;
    char *buf = malloc(len ? len : 1);
    int rc;

    memcpy(buf, text, len);
    rc = agent_parse_cgroup_file(which, len ? buf : NULL, len, &row, io, 2, &n);
    if (rc != want_rc) {
        expect(0, what);
    } else if (rc == AGENT_OK && field >= 0) {
        expect((row.present >> field & 1) && row.values[field] == want, what);
    } else if (rc == AGENT_OK) {
        expect(row.present == 0, what);
    } else {
        /* fuzz/regressions/cgroup_file/unknown-file-kind: *io_count was left unset. */
        expect(want_rc == AGENT_EROWS ? n == 2 : n == 0, what);
    }
    free(buf);
    free(io);
}

static void test_parse(void)
{
    parse_case(AGENT_CGROUP_FILE_CPU_MAX, "max 100000\n", AGENT_OK, -1, 0, "cpu.max without a quota");
    parse_case(AGENT_CGROUP_FILE_CPU_MAX, "max\n", AGENT_EFORMAT, -1, 0, "cpu.max without a period");
    parse_case(AGENT_CGROUP_FILE_MEMORY_MAX, "536870912\n", AGENT_OK, AGENT_CGROUP_MEMORY_MAX, 536870912,
               "memory.max number");
    parse_case(AGENT_CGROUP_FILE_MEMORY_MAX, "536870912\n\n", AGENT_EFORMAT, -1, 0, "memory.max two lines");
    /* fuzz/regressions/cgroup_file/empty-memory-current: (NULL, 0) input. */
    parse_case(AGENT_CGROUP_FILE_MEMORY_CURRENT, "", AGENT_EFORMAT, -1, 0, "memory.current empty");
    parse_case(AGENT_CGROUP_FILE_MEMORY_CURRENT, "18446744073709551615", AGENT_OK, AGENT_CGROUP_MEMORY_CURRENT,
               UINT64_MAX, "memory.current 2^64-1 without a newline");
    parse_case(AGENT_CGROUP_FILE_MEMORY_CURRENT, "18446744073709551616\n", AGENT_ERANGE, -1, 0, "2^64");
    parse_case(AGENT_CGROUP_FILE_CPU_STAT, "usage_usec 5\n\nuser_usec 1\n", AGENT_EFORMAT, -1, 0, "blank line");
    parse_case(AGENT_CGROUP_FILE_CPU_STAT, "usage_usec 5\nusage_usec 6\n", AGENT_OK, AGENT_CGROUP_USAGE_USEC, 6,
               "last of a repeated key");
    parse_case(AGENT_CGROUP_FILE_CPU_PRESSURE, "some avg10=0.00 total=7\n", AGENT_OK, AGENT_CGROUP_CPU_SOME_USEC, 7,
               "pressure some");
    parse_case(AGENT_CGROUP_FILE_IO_PRESSURE, "full total=x\n", AGENT_EFORMAT, -1, 0, "pressure bad total");
    parse_case(AGENT_CGROUP_FILE_MEMORY_PRESSURE, "partial total=1\n", AGENT_EFORMAT, -1, 0, "pressure kind");
    parse_case(AGENT_CGROUP_FILE_IO_STAT, "8:0 rbytes=1\n8:16 rbytes=2\n8:32 rbytes=3\n", AGENT_EROWS, -1, 0,
               "io rows past the cap");
    parse_case(AGENT_CGROUP_FILE_IO_STAT, "8 rbytes=1\n", AGENT_EFORMAT, -1, 0, "io.stat without a colon");
    parse_case(AGENT_CGROUP_FILE_PROCS, "", AGENT_OK, -1, 0, "no process");
    parse_case(AGENT_CGROUP_FILE_PROCS, "12\n13\n", AGENT_OK, AGENT_CGROUP_PID, 12, "first pid");
    parse_case(AGENT_CGROUP_NFILES, "x", AGENT_EFORMAT, -1, 0, "no such file kind");
}

int test_cgroups(int *run)
{
    char top[] = "/tmp/agent-cgroups-XXXXXX";
    char cmd[256];

    if (!mkdtemp(top)) {
        perror("mkdtemp");
        exit(2);
    }
    test_walk(top);
    test_parse();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", top);
    if (system(cmd) != 0)
        printf("could not remove %s\n", top);
    *run += checks;
    return failed;
}
