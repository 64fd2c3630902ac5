/* The kernel's floor under the processes collector: list a /proc root and
 * open, read and close every process's stat file, and with --threads list
 * task/ and read every other thread's stat for the processes whose
 * num_threads is above 1 (the files agent_walk_procs reads, in the same
 * order), with one reused buffer, one read(2) per file, raw system calls,
 * and nothing else: no parsing past num_threads, no rows, no metrics.
 *
 *     floor_processes PROCFS PASSES [--threads]
 *
 * prints "files N cpu_ms_per_pass X" (CLOCK_PROCESS_CPUTIME_ID over the
 * passes).  benchmarks/compare_processes.py builds and runs it. */
#define _GNU_SOURCE /* syscall(), memrchr() */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { DIRENT_BUF = 32768, STAT_BUF = 4096, PATH_BUF = 64 };

static int is_pid(const char *name)
{
    if (name[0] < '1' || name[0] > '9')
        return 0;
    for (const char *p = name; *p; p++)
        if (*p < '0' || *p > '9' || p - name >= 19)
            return 0;
    return 1;
}

/* One read; the byte count or -1. */
static long read_file(int dirfd, const char *path, char *buf)
{
    int fd = (int)syscall(SYS_openat, dirfd, path, O_RDONLY | O_CLOEXEC);
    long n;

    if (fd < 0)
        return -1;
    n = syscall(SYS_read, fd, buf, (size_t)STAT_BUF);
    syscall(SYS_close, fd);
    return n;
}

/* num_threads: the 18th field after comm's last ')'. */
static long num_threads(const char *buf, long len)
{
    const char *e = buf + len;
    const char *p = memrchr(buf, ')', (size_t)len);
    int field = 0;

    if (!p)
        return 0;
    for (p++; p < e && field < 18; p++)
        if (*p == ' ')
            field++;
    return field == 18 ? strtol(p, NULL, 10) : 0;
}

/* Calls fn(dirfd, name, arg) for every numeric entry of dirfd's listing. */
static long each_pid(int dirfd, long (*fn)(int, const char *, void *), void *arg)
{
    char *dents = malloc(DIRENT_BUF);
    int fd = (int)syscall(SYS_openat, dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    long got, files = 0;

    if (!dents || fd < 0) {
        free(dents);
        return 0;
    }
    while ((got = syscall(SYS_getdents64, fd, dents, (size_t)DIRENT_BUF)) > 0) {
        for (long pos = 0; pos < got;) {
            unsigned short reclen;
            const char *name = dents + pos + 19;

            memcpy(&reclen, dents + pos + 16, sizeof reclen);
            pos += reclen;
            if (is_pid(name))
                files += fn(dirfd, name, arg);
        }
    }
    syscall(SYS_close, fd);
    free(dents);
    return files;
}

struct task_arg {
    const char *pid;
    char *buf;
};

static long one_task(int taskfd, const char *tid, void *arg)
{
    struct task_arg *t = arg;
    char path[PATH_BUF];

    if (strcmp(tid, t->pid) == 0)
        return 0; /* the leader's state is the process's own */
    snprintf(path, sizeof path, "%s/stat", tid);
    return read_file(taskfd, path, t->buf) >= 0;
}

static long one_process(int procfd, const char *pid, void *arg)
{
    char *buf = *(char **)arg;
    int threads = ((char **)arg)[1] != NULL;
    char path[PATH_BUF];
    long n, files = 1;

    snprintf(path, sizeof path, "%s/stat", pid);
    n = read_file(procfd, path, buf);
    if (n < 0)
        return 0;
    if (threads && num_threads(buf, n) > 1) {
        struct task_arg t = { .pid = pid, .buf = buf };
        int taskfd;

        snprintf(path, sizeof path, "%s/task", pid);
        taskfd = (int)syscall(SYS_openat, procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (taskfd >= 0) {
            files += each_pid(taskfd, one_task, &t);
            syscall(SYS_close, taskfd);
        }
    }
    return files;
}

static double cpu_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    char buf[STAT_BUF];
    char *arg[2] = { buf, NULL };
    int procfd, passes;
    long files = 0;
    double start;

    if (argc < 3) {
        fprintf(stderr, "usage: floor_processes PROCFS PASSES [--threads]\n");
        return 2;
    }
    passes = atoi(argv[2]);
    if (argc > 3 && strcmp(argv[3], "--threads") == 0)
        arg[1] = buf;
    procfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (procfd < 0 || passes < 1) {
        perror(argv[1]);
        return 2;
    }
    start = cpu_seconds();
    for (int i = 0; i < passes; i++)
        files = each_pid(procfd, one_process, arg);
    printf("files %ld cpu_ms_per_pass %.3f\n", files, (cpu_seconds() - start) * 1e3 / passes);
    return 0;
}
