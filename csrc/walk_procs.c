/* Every process's /proc/PID/stat in one call, under a directory descriptor:
 * the processes collector's one crossing of the C boundary per scrape
 * (agent_api.h documents the contract, docs/NODE_EXPORTER_COMPAT.md the
 * behaviour it mirrors).  C allocates nothing: the listing, the stat file and
 * a task/ listing each go through a bounded buffer on the stack. */
#define _GNU_SOURCE /* syscall(), memrchr() */

#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* struct linux_dirent64 (getdents64(2)), as in read_files.c. */
enum {
    DIRENT_RECLEN = 16,
    DIRENT_NAME = 19,
    DIRENT_BUF = 8192,
    /* "4194304/task/4194304/stat" and the like; names are at most 19
     * digits (parse_pid), so 64 bytes always hold them. */
    PATH_BUF = 64
};

/* The tokens after comm, counted from 0 (stat(5) numbers them 3 on). */
enum {
    TOK_STATE = 0,
    TOK_UTIME = 11,
    TOK_STIME = 12,
    TOK_THREADS = 17,
    TOK_STARTTIME = 19,
    TOK_RSS = 21,
    TOK_COUNT = 22
};

struct proc_stat {
    uint64_t state;
    uint64_t threads;
    uint64_t utime;
    uint64_t stime;
    uint64_t starttime;
    uint64_t rss_pages;
    size_t comm_off;
    size_t comm_len;
};

/* A process directory's name: canonical decimal (no sign, no leading zero),
 * as the kernel writes them; anything else in /proc is not a process. */
static int parse_pid(const char *name, size_t len, uint64_t *pid)
{
    uint64_t v = 0;
    size_t i;

    if (len == 0 || len > 19 || name[0] < '1' || name[0] > '9')
        return 0;
    for (i = 0; i < len; i++) {
        unsigned d = (unsigned)((unsigned char)name[i] - '0');

        if (d > 9)
            return 0;
        v = v * 10 + d;
    }
    *pid = v;
    return 1;
}

/* The walk's system calls through syscall(2), not glibc's openat, read and
 * close: those are cancellation points, and in a process with more than one
 * thread (the agent's HTTP server) each call switches the thread's cancel
 * type with two atomic operations around the system call.  The walk makes
 * three or more per process, and nothing here is ever cancelled: 4-5 % of
 * a walk of 10,000 generated processes (docs/BENCHMARKS.md, "processes"). */
static int sys_openat(int dirfd, const char *path, int flags)
{
    return (int)syscall(SYS_openat, dirfd, path, flags);
}

static ssize_t sys_read(int fd, char *buf, size_t len)
{
    return (ssize_t)syscall(SYS_read, fd, buf, len);
}

static int sys_close(int fd)
{
    return (int)syscall(SYS_close, fd);
}

/* 1 for "the process is gone": it exited between the listing and the read. */
static int gone(int err)
{
    return err == ENOENT || err == ESRCH;
}

/* A stat file into [buf, buf + AGENT_PROC_STAT_MAX): AGENT_OK, 1 when the
 * process is gone, AGENT_EFORMAT when the file fills the buffer, AGENT_EIO
 * (errno set) otherwise. */
static int read_stat(int dirfd, const char *path, char *buf, size_t *len)
{
    size_t n = 0;
    int fd = sys_openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    int rc = AGENT_OK;

    if (fd < 0)
        return gone(errno) ? 1 : AGENT_EIO;
    while (n < AGENT_PROC_STAT_MAX) {
        ssize_t r = sys_read(fd, buf + n, AGENT_PROC_STAT_MAX - n);

        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = gone(errno) ? 1 : AGENT_EIO;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        /* A stat file is one line, and procfs formats it whole at the
         * first read: a read that ends at its newline short of the buffer
         * has the file, and the read that would return 0 is skipped (5-6 %
         * of a walk without thread states, 4.7 % with them).  procs.py's
         * twin stops at the same byte. */
        if (n < AGENT_PROC_STAT_MAX && buf[n - 1] == '\n')
            break;
    }
    if (rc == AGENT_OK && n == AGENT_PROC_STAT_MAX)
        rc = AGENT_EFORMAT;
    {
        int saved = errno;

        sys_close(fd);
        errno = saved;
    }
    *len = n;
    return rc;
}

/* stat(5): "pid (comm) state ppid ...".  comm runs from the first '(' to
 * the LAST ')': the kernel does not escape it, so it may hold ')', spaces
 * and newlines itself (psutil and procfs cut it the same way). */
static int parse_stat_line(const char *buf, size_t len, struct proc_stat *out)
{
    const char *e = buf + len;
    const char *l, *r, *p;
    int tok;

    if (len == 0)
        return AGENT_EFORMAT;
    l = memchr(buf, '(', len);
    if (!l || l + 1 == e)
        return AGENT_EFORMAT;
    r = memrchr(l + 1, ')', (size_t)(e - (l + 1)));
    if (!r)
        return AGENT_EFORMAT;
    out->comm_off = (size_t)(l + 1 - buf);
    out->comm_len = (size_t)(r - (l + 1));
    p = r + 1;
    for (tok = 0; tok < TOK_COUNT; tok++) {
        const char *fe;
        uint64_t v = 0;
        int rc;

        p = agent_skip_space(p, e);
        if (p == e)
            return AGENT_EFORMAT;
        switch (tok) {
        case TOK_STATE:
            fe = agent_field_end(p, e);
            if (fe - p != 1)
                return AGENT_EFORMAT;
            out->state = (unsigned char)*p;
            break;
        case TOK_UTIME:
        case TOK_STIME:
        case TOK_THREADS:
        case TOK_STARTTIME:
        case TOK_RSS:
            rc = agent_scan_counter(p, e, &fe, &v);
            if (rc != AGENT_OK)
                return rc;
            if (tok == TOK_UTIME)
                out->utime = v;
            else if (tok == TOK_STIME)
                out->stime = v;
            else if (tok == TOK_THREADS)
                out->threads = v;
            else if (tok == TOK_STARTTIME)
                out->starttime = v;
            else
                out->rss_pages = v;
            break;
        default:
            fe = agent_field_end(p, e);
            break;
        }
        p = fe;
    }
    return AGENT_OK;
}

/* getdents64 on fd, one record at a time: 1 with the next name, 0 at the
 * end, AGENT_EIO (errno set) on an error.  The caller owns buf (DIRENT_BUF
 * bytes, 8-aligned, left uninitialised: clearing 8 KiB per multi-threaded
 * process was a seventh of the walk's instructions) and the cursor; a
 * record the kernel would never write is EIO. */
struct dir_cursor {
    int fd;
    size_t pos;
    size_t got;
    char *buf;
};

static int next_name(struct dir_cursor *c, const char **name, size_t *len)
{
    for (;;) {
        if (c->pos + DIRENT_NAME < c->got) {
            unsigned short reclen;

            memcpy(&reclen, c->buf + c->pos + DIRENT_RECLEN, sizeof reclen);
            if (reclen <= DIRENT_NAME || reclen > c->got - c->pos) {
                errno = EIO;
                return AGENT_EIO;
            }
            *name = c->buf + c->pos + DIRENT_NAME;
            *len = strnlen(*name, (size_t)reclen - DIRENT_NAME);
            c->pos += reclen;
            return 1;
        }
        {
            long got = syscall(SYS_getdents64, c->fd, c->buf, (size_t)DIRENT_BUF);

            if (got < 0) {
                if (errno == EINTR)
                    continue;
                return AGENT_EIO;
            }
            if (got == 0)
                return 0;
            c->got = (size_t)got;
            c->pos = 0;
        }
    }
}

static int close_keep_errno(int fd, int rc)
{
    int saved = errno;

    sys_close(fd);
    errno = saved;
    return rc;
}

/* The states of a multi-threaded process's tasks into out->thread_states:
 * its own from `state`, the others' from task/TID/stat. */
static int count_tasks(int procfd, const char *pidname, size_t pidlen, uint64_t pid, uint64_t state,
                       struct agent_proc_walk *out)
{
    _Alignas(8) char dir_buf[DIRENT_BUF];
    struct dir_cursor c = { .fd = -1, .buf = dir_buf };
    char stat_buf[AGENT_PROC_STAT_MAX];
    char path[PATH_BUF];
    const char *name;
    size_t len;
    int rc;

    memcpy(path, pidname, pidlen);
    memcpy(path + pidlen, "/task", sizeof "/task");
    c.fd = sys_openat(procfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    if (c.fd < 0) {
        if (gone(errno))
            return AGENT_OK;
        out->err_pid = pid;
        out->err = (uint64_t)errno;
        return AGENT_EIO;
    }
    while ((rc = next_name(&c, &name, &len)) == 1) {
        struct proc_stat st = { 0 };
        uint64_t tid;
        size_t n;
        int r;

        if (!parse_pid(name, len, &tid))
            continue;
        if (tid == pid) {
            out->thread_states[state & 0xff]++;
            continue;
        }
        memcpy(path, name, len);
        memcpy(path + len, "/stat", sizeof "/stat");
        r = read_stat(c.fd, path, stat_buf, &n);
        if (r == 1)
            continue;
        if (r == AGENT_OK)
            r = parse_stat_line(stat_buf, n, &st);
        if (r != AGENT_OK) {
            out->err_pid = pid;
            out->err_tid = tid;
            out->err = r == AGENT_EIO ? (uint64_t)errno : 0;
            return close_keep_errno(c.fd, r);
        }
        out->thread_states[st.state]++;
    }
    if (rc == AGENT_EIO && gone(errno))
        rc = AGENT_OK; /* the process exited while its tasks were listed */
    else if (rc == AGENT_EIO) {
        out->err_pid = pid;
        out->err = (uint64_t)errno;
    }
    return close_keep_errno(c.fd, rc == 0 ? AGENT_OK : rc);
}

int agent_walk_procs(int procfd, int flags, struct agent_proc *rows, size_t rows_cap,
                     char *comms, size_t comms_cap, struct agent_proc_walk *out)
{
    _Alignas(8) char dir_buf[DIRENT_BUF];
    struct dir_cursor c = { .fd = -1, .buf = dir_buf };
    char stat_buf[AGENT_PROC_STAT_MAX];
    char path[PATH_BUF];
    const char *name;
    size_t len, count = 0, comms_len = 0;
    int storing = 1;
    int rc;

    *out = (struct agent_proc_walk){ .count = 0 };
    /* A descriptor of its own, so the listing starts at offset 0 whatever
     * the caller did with procfd. */
    c.fd = openat(procfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    if (c.fd < 0) {
        out->err = (uint64_t)errno;
        return AGENT_EIO;
    }
    while ((rc = next_name(&c, &name, &len)) == 1) {
        struct proc_stat st = { 0 };
        uint64_t pid;
        size_t n;
        int r;

        if (!parse_pid(name, len, &pid))
            continue;
        memcpy(path, name, len);
        memcpy(path + len, "/stat", sizeof "/stat");
        r = read_stat(procfd, path, stat_buf, &n);
        if (r == 1)
            continue;
        if (r == AGENT_OK)
            r = parse_stat_line(stat_buf, n, &st);
        if (r != AGENT_OK) {
            out->err_pid = pid;
            out->err = r == AGENT_EIO ? (uint64_t)errno : 0;
            return close_keep_errno(c.fd, r);
        }
        out->states[st.state]++;
        if (flags & AGENT_PROCS_THREADS) {
            if (st.threads == 1) {
                out->thread_states[st.state]++;
            } else {
                r = count_tasks(procfd, name, len, pid, st.state, out);
                if (r != AGENT_OK)
                    return close_keep_errno(c.fd, r);
            }
        }
        /* Once a row or a comm does not fit, nothing more is stored (the
         * caller grows both and walks again), but the walk goes on to count
         * what it needs. */
        if (storing && (count >= rows_cap || comms_cap - comms_len < st.comm_len))
            storing = 0;
        if (storing) {
            memcpy(comms + comms_len, stat_buf + st.comm_off, st.comm_len);
            rows[count] = (struct agent_proc){
                .pid = pid,
                .state = st.state,
                .threads = st.threads,
                .utime = st.utime,
                .stime = st.stime,
                .starttime = st.starttime,
                .rss_pages = st.rss_pages,
                .comm_off = comms_len,
                .comm_len = st.comm_len,
            };
        }
        count++;
        comms_len += st.comm_len;
    }
    if (rc == AGENT_EIO) {
        out->err = (uint64_t)errno;
        return close_keep_errno(c.fd, AGENT_EIO);
    }
    close(c.fd);
    out->count = count;
    out->comms_len = comms_len;
    if (count > rows_cap)
        return AGENT_EROWS;
    if (comms_len > comms_cap)
        return AGENT_ETRUNC;
    return AGENT_OK;
}
