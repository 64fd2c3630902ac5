/* The cgroup v2 hierarchy -> one row of struct agent_cgroup per container
 * cgroup, in one call (agent_api.h documents the contract, docs/PARSERS.md
 * the grammar; src/agent/procfs/cgroups.py is the pure-Python twin and
 * tests/test_cgroups_parity.py holds both to the same bytes).
 *
 * The walk descends every directory under dirfd with openat() and
 * getdents64, never into a container's own cgroup (its children are the
 * container's business: crun's "container", nspawn's "payload", a nested
 * runtime), so the cost is one listing per non-container cgroup plus a
 * fixed set of files per container.  Nothing is allocated: paths travel in
 * the caller's names buffer, file contents in the caller's scratch buffer. */
#define _GNU_SOURCE /* syscall(), DT_* */

#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"
#include "agent_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* getdents64's record: d_ino, d_off, d_reclen, d_type, then the name. */
enum {
    WALK_RECLEN = 16,
    WALK_TYPE = 18,
    WALK_NAME = 19,
    /* A listing is read this many bytes at a time, per level. */
    WALK_DIRBUF = 2048,
    ID_HEX = 64
};

struct walk {
    char *names;
    size_t names_cap;
    size_t names_len;
    struct agent_cgroup *rows;
    size_t rows_cap;
    size_t count;
    struct agent_cgroup_io *io;
    size_t io_cap;
    size_t io_count;
    int procfd;
    struct agent_netdev *net;
    size_t net_cap;
    size_t net_count;
    char *buf;
    size_t buf_cap;
    uint64_t err_file;
    /* The path of the directory being listed, relative to the root. */
    char path[PATH_MAX];
    size_t path_len;
    /* Where the innermost pod's uid lies in path (pod_len 0: none). */
    size_t pod_off;
    size_t pod_len;
};

static int is_hex(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

static int has_prefix(const char *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);

    return n >= k && memcmp(p, prefix, k) == 0;
}

static int has_suffix(const char *p, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);

    return n >= k && memcmp(p + n - k, suffix, k) == 0;
}

/* "<prefix><64 hex><suffix>" */
static int id_between(const char *p, size_t n, const char *prefix, const char *suffix, size_t *off)
{
    size_t a = strlen(prefix), b = strlen(suffix);

    if (n != a + ID_HEX + b || !has_prefix(p, n, prefix) || !has_suffix(p, n, suffix) || !is_hex(p + a, ID_HEX))
        return 0;
    *off = a;
    return 1;
}

/* The runtime whose layout the directory name `p` follows (0: none), and
 * where its id lies in the name.  The layouts are listed, with their
 * sources, in tests/fixtures/cgroups/README.md. */
static uint64_t agent_cgroup_classify(const char *p, size_t n, size_t *id_off, size_t *id_len)
{
    *id_len = ID_HEX;
    if (id_between(p, n, "docker-", ".scope", id_off))
        return AGENT_CGROUP_DOCKER;
    if (id_between(p, n, "cri-containerd-", ".scope", id_off))
        return AGENT_CGROUP_CONTAINERD;
    if (id_between(p, n, "crio-", ".scope", id_off))
        return AGENT_CGROUP_CRIO;
    if (id_between(p, n, "libpod-", ".scope", id_off) || id_between(p, n, "libpod-", "", id_off))
        return AGENT_CGROUP_PODMAN;
    if (id_between(p, n, "", "", id_off))
        return AGENT_CGROUP_CGROUPFS;
    /* systemd-nspawn (and libvirt) register machine-<escaped name>.scope. */
    if (n > strlen("machine-.scope") && has_prefix(p, n, "machine-") && has_suffix(p, n, ".scope")) {
        *id_off = strlen("machine-");
        *id_len = n - strlen("machine-.scope");
        return AGENT_CGROUP_NSPAWN;
    }
    return 0;
}

static int uid_chars(const char *p, size_t n)
{
    size_t i;

    if (n == 0 || n > ID_HEX)
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

/* A pod's cgroup: kubelet's "pod<uid>" (cgroupfs driver) or
 * "kubepods[-<qos>]-pod<uid with _ for ->.slice" (systemd driver). */
static int pod_uid(const char *p, size_t n, size_t *off, size_t *len)
{
    if (has_prefix(p, n, "kubepods") && has_suffix(p, n, ".slice")) {
        size_t end = n - strlen(".slice"), i;

        for (i = end; i >= strlen("-pod"); i--) {
            if (memcmp(p + i - strlen("-pod"), "-pod", strlen("-pod")) == 0)
                break;
        }
        if (i < strlen("-pod"))
            return 0;
        *off = i;
        *len = end - i;
        return uid_chars(p + *off, *len);
    }
    if (has_prefix(p, n, "pod")) {
        *off = strlen("pod");
        *len = n - strlen("pod");
        return uid_chars(p + *off, *len);
    }
    return 0;
}

static ssize_t read_retry(int fd, char *buf, size_t want)
{
    ssize_t r;

    do
        r = read(fd, buf, want);
    while (r < 0 && errno == EINTR);
    return r;
}

/* The file `name` under dirfd into w->buf: 0 and *len, 1 when it cannot
 * be opened or read (gone, no such controller), AGENT_ETRUNC when it fills
 * the buffer. */
static int slurp(struct walk *w, int dirfd, const char *name, size_t *len)
{
    size_t n = 0;
    ssize_t r;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    *len = 0;
    if (fd < 0)
        return 1;
    for (;;) {
        if (n == w->buf_cap) {
            close(fd);
            return AGENT_ETRUNC;
        }
        r = read_retry(fd, w->buf + n, w->buf_cap - n);
        if (r < 0) {
            close(fd);
            return 1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    *len = n;
    return 0;
}

/* The digits [p, e) exactly: 0, AGENT_EFORMAT or AGENT_ERANGE. */
static int number(const char *p, const char *e, uint64_t *out)
{
    const char *fe;
    int rc;

    if (p == e)
        return AGENT_EFORMAT;
    rc = agent_scan_counter(p, e, &fe, out);
    if (rc == AGENT_OK && fe != e)
        return AGENT_EFORMAT;
    return rc;
}

/* A line without its "\n"; the text is one line, or one line and "\n". */
static int one_line(const char *buf, size_t len, const char **e)
{
    const char *nl = len ? memchr(buf, '\n', len) : NULL;

    if (nl && nl != buf + len - 1)
        return AGENT_EFORMAT;
    *e = nl ? nl : buf + len;
    return AGENT_OK;
}

struct key_field {
    const char *key;
    size_t len;  /* of key: compared before its bytes, on every line */
    int bit;
};
#define KEY_FIELD(k, b) {.key = (k), .len = sizeof(k) - 1, .bit = (b)}

/* "KEY VALUE" lines (cpu.stat, memory.stat, memory.events): the keys asked
 * for into their fields, the others skipped; the last of a repeated key
 * wins. */
static int flat_keyed(const char *buf, size_t len, const struct key_field *keys, size_t nkeys,
                      struct agent_cgroup *row, uint64_t *fields)
{
    struct agent_lines it;
    const char *ls, *le;

    agent_lines_init(&it, buf, len);
    while (agent_lines_next(&it, &ls, &le)) {
        const char *sp = ls == le ? NULL : memchr(ls, ' ', (size_t)(le - ls));
        uint64_t v;
        size_t i;
        int rc;

        if (!sp || sp == ls)
            return AGENT_EFORMAT;
        rc = number(sp + 1, le, &v);
        if (rc != AGENT_OK)
            return rc;
        for (i = 0; i < nkeys; i++) {
            if ((size_t)(sp - ls) == keys[i].len && memcmp(ls, keys[i].key, keys[i].len) == 0) {
                fields[keys[i].bit] = v;
                row->present |= (uint64_t)1 << keys[i].bit;
            }
        }
    }
    return AGENT_OK;
}

/* cpu.pressure, memory.pressure, io.pressure: "some|full avg10=.. avg60=..
 * avg300=.. total=N"; total is in microseconds. */
static int pressure(const char *buf, size_t len, int some_bit, struct agent_cgroup *row, uint64_t *fields)
{
    struct agent_lines it;
    const char *ls, *le;

    agent_lines_init(&it, buf, len);
    while (agent_lines_next(&it, &ls, &le)) {
        const char *p = ls, *fe;
        int bit;

        fe = agent_field_end(p, le);
        if (fe - p == 4 && memcmp(p, "some", 4) == 0)
            bit = some_bit;
        else if (fe - p == 4 && memcmp(p, "full", 4) == 0)
            bit = some_bit + 1;
        else
            return AGENT_EFORMAT;
        for (p = agent_skip_space(fe, le); p < le; p = agent_skip_space(fe, le)) {
            fe = agent_field_end(p, le);
            if (fe - p > 6 && memcmp(p, "total=", 6) == 0) {
                uint64_t v;
                int rc = number(p + 6, fe, &v);

                if (rc != AGENT_OK)
                    return rc;
                fields[bit] = v;
                row->present |= (uint64_t)1 << bit;
            }
        }
    }
    return AGENT_OK;
}

/* io.stat: "MAJ:MIN key=value ..." per device, rbytes and wbytes kept. */
static int io_stat(struct walk *w, const char *buf, size_t len, struct agent_cgroup *row)
{
    struct agent_lines it;
    const char *ls, *le;

    row->io_first = w->io_count;
    agent_lines_init(&it, buf, len);
    while (agent_lines_next(&it, &ls, &le)) {
        struct agent_cgroup_io dev = {.major = 0};
        const char *fe = agent_field_end(ls, le), *colon, *p;
        int rc;

        colon = fe == ls ? NULL : memchr(ls, ':', (size_t)(fe - ls));
        if (!colon)
            return AGENT_EFORMAT;
        rc = number(ls, colon, &dev.major);
        if (rc == AGENT_OK)
            rc = number(colon + 1, fe, &dev.minor);
        if (rc != AGENT_OK)
            return rc;
        for (p = agent_skip_space(fe, le); p < le; p = agent_skip_space(fe, le)) {
            const char *eq;
            uint64_t v;

            fe = agent_field_end(p, le);
            eq = memchr(p, '=', (size_t)(fe - p));
            if (!eq || eq == p)
                return AGENT_EFORMAT;
            rc = number(eq + 1, fe, &v);
            if (rc != AGENT_OK)
                return rc;
            if (eq - p == 6 && memcmp(p, "rbytes", 6) == 0) {
                dev.rbytes = v;
                dev.present |= (uint64_t)1 << AGENT_CGROUP_IO_RBYTES;
            } else if (eq - p == 6 && memcmp(p, "wbytes", 6) == 0) {
                dev.wbytes = v;
                dev.present |= (uint64_t)1 << AGENT_CGROUP_IO_WBYTES;
            }
        }
        if (w->io_count == w->io_cap)
            return AGENT_EROWS;
        w->io[w->io_count++] = dev;
        row->io_count++;
    }
    return AGENT_OK;
}

/* memory.max, or the quota of cpu.max ("QUOTA PERIOD"): a number, or "max"
 * (no limit: memory.max's field holds UINT64_MAX, cpu.max's is left out). */
static int limit(const char *buf, size_t len, int is_cpu, int bit, struct agent_cgroup *row, uint64_t *fields)
{
    const char *e, *fe;
    uint64_t v;
    int rc = one_line(buf, len, &e);

    if (rc != AGENT_OK)
        return rc;
    fe = is_cpu ? memchr(buf, ' ', (size_t)(e - buf)) : e;
    if (!fe)
        return AGENT_EFORMAT;
    if (is_cpu) {
        rc = number(fe + 1, e, &v);  /* the period: checked, not kept */
        if (rc != AGENT_OK)
            return rc;
    }
    if (fe - buf == 3 && memcmp(buf, "max", 3) == 0) {
        if (is_cpu)
            return AGENT_OK;
        v = UINT64_MAX;
    } else {
        rc = number(buf, fe, &v);
        if (rc != AGENT_OK)
            return rc;
    }
    fields[bit] = v;
    row->present |= (uint64_t)1 << bit;
    return AGENT_OK;
}

/* The first pid of a cgroup.procs: 0 and *pid (0 when empty). */
static int first_pid(const char *buf, size_t len, uint64_t *pid)
{
    const char *nl = len ? memchr(buf, '\n', len) : NULL;

    *pid = 0;
    if (len == 0)
        return AGENT_OK;
    return number(buf, nl ? nl : buf + len, pid);
}

static const struct key_field cpu_keys[] = {
    KEY_FIELD("usage_usec", AGENT_CGROUP_USAGE_USEC),
    KEY_FIELD("user_usec", AGENT_CGROUP_USER_USEC),
    KEY_FIELD("system_usec", AGENT_CGROUP_SYSTEM_USEC),
    KEY_FIELD("nr_periods", AGENT_CGROUP_NR_PERIODS),
    KEY_FIELD("nr_throttled", AGENT_CGROUP_NR_THROTTLED),
    KEY_FIELD("throttled_usec", AGENT_CGROUP_THROTTLED_USEC),
};
static const struct key_field memory_keys[] = {
    KEY_FIELD("anon", AGENT_CGROUP_MEMORY_ANON),
    KEY_FIELD("file", AGENT_CGROUP_MEMORY_FILE),
    KEY_FIELD("inactive_file", AGENT_CGROUP_MEMORY_INACTIVE_FILE),
};
static const struct key_field event_keys[] = {
    KEY_FIELD("oom_kill", AGENT_CGROUP_OOM_KILL),
};

/* The files read per container, in this order (AGENT_CGROUP_FILE_*). */
static const char *const agent_cgroup_files[AGENT_CGROUP_NFILES] = {
    "cpu.stat", "cpu.max", "memory.current", "memory.max", "memory.stat", "memory.events",
    "io.stat", "cpu.pressure", "memory.pressure", "io.pressure", "cgroup.procs",
};

static int parse_file(struct walk *w, int which, const char *buf, size_t len, struct agent_cgroup *row,
                      uint64_t *fields)
{
    const char *e;
    int rc;

    switch (which) {
    case AGENT_CGROUP_FILE_CPU_STAT:
        return flat_keyed(buf, len, cpu_keys, sizeof cpu_keys / sizeof cpu_keys[0], row, fields);
    case AGENT_CGROUP_FILE_CPU_MAX:
        return limit(buf, len, 1, AGENT_CGROUP_CPU_QUOTA_USEC, row, fields);
    case AGENT_CGROUP_FILE_MEMORY_CURRENT:
        rc = one_line(buf, len, &e);
        if (rc == AGENT_OK)
            rc = number(buf, e, &fields[AGENT_CGROUP_MEMORY_CURRENT]);
        if (rc == AGENT_OK)
            row->present |= (uint64_t)1 << AGENT_CGROUP_MEMORY_CURRENT;
        return rc;
    case AGENT_CGROUP_FILE_MEMORY_MAX:
        return limit(buf, len, 0, AGENT_CGROUP_MEMORY_MAX, row, fields);
    case AGENT_CGROUP_FILE_MEMORY_STAT:
        return flat_keyed(buf, len, memory_keys, sizeof memory_keys / sizeof memory_keys[0], row, fields);
    case AGENT_CGROUP_FILE_MEMORY_EVENTS:
        return flat_keyed(buf, len, event_keys, 1, row, fields);
    case AGENT_CGROUP_FILE_IO_STAT:
        return io_stat(w, buf, len, row);
    case AGENT_CGROUP_FILE_CPU_PRESSURE:
        return pressure(buf, len, AGENT_CGROUP_CPU_SOME_USEC, row, fields);
    case AGENT_CGROUP_FILE_MEMORY_PRESSURE:
        return pressure(buf, len, AGENT_CGROUP_MEMORY_SOME_USEC, row, fields);
    case AGENT_CGROUP_FILE_IO_PRESSURE:
        return pressure(buf, len, AGENT_CGROUP_IO_SOME_USEC, row, fields);
    default: /* AGENT_CGROUP_FILE_PROCS */
        rc = first_pid(buf, len, &fields[AGENT_CGROUP_PID]);
        if (rc == AGENT_OK && fields[AGENT_CGROUP_PID])
            row->present |= (uint64_t)1 << AGENT_CGROUP_PID;
        return rc;
    }
}

int agent_parse_cgroup_file(int which, const char *buf, size_t len, struct agent_cgroup *row,
                            struct agent_cgroup_io *io, size_t io_cap, size_t *io_count)
{
    struct walk w = {.io = io, .io_cap = io_cap, .procfd = -1};
    int rc;

    *io_count = 0;
    if (!buf)
        buf = "";  /* (NULL, 0): no pointer arithmetic on NULL */
    if (which < 0 || which >= AGENT_CGROUP_NFILES)
        return AGENT_EFORMAT;
    memset(row, 0, sizeof *row);
    rc = parse_file(&w, which, buf, len, row, row->values);
    *io_count = w.io_count;
    return rc;
}

/* Call fn(w, fd, name, len, arg) for each subdirectory of fd; stop at the
 * first non-zero it returns. */
typedef int (*each_dir_fn)(struct walk *w, int dirfd, const char *name, size_t len, void *arg);

static int each_dir(struct walk *w, int fd, each_dir_fn fn, void *arg)
{
    _Alignas(8) char dbuf[WALK_DIRBUF];
    int rc = AGENT_OK;

    for (;;) {
        long got = syscall(SYS_getdents64, fd, dbuf, sizeof dbuf);
        size_t pos = 0;

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            /* A cgroup removed while listed reads as ENOENT: nothing in it. */
            return errno == ENOENT ? AGENT_OK : AGENT_EIO;
        if (got == 0)
            return AGENT_OK;
        while (pos + WALK_NAME < (size_t)got) {
            unsigned short reclen;
            const char *name = dbuf + pos + WALK_NAME;
            unsigned char type = (unsigned char)dbuf[pos + WALK_TYPE];
            size_t len;

            memcpy(&reclen, dbuf + pos + WALK_RECLEN, sizeof reclen);
            if (reclen <= WALK_NAME || reclen > (size_t)got - pos) {
                errno = EIO;  /* a record the kernel would never write */
                return AGENT_EIO;
            }
            len = strnlen(name, (size_t)reclen - WALK_NAME);
            pos += reclen;
            if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
                continue;
            if (type == DT_UNKNOWN) {
                struct stat st;
                char tmp[256];

                if (len < sizeof tmp) {
                    memcpy(tmp, name, len);
                    tmp[len] = '\0';
                    if (fstatat(fd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
                        type = DT_DIR;
                }
            }
            if (type == DT_DIR) {
                rc = fn(w, fd, name, len, arg);
                if (rc != AGENT_OK)
                    return rc;
            }
        }
    }
}

static int open_dir(int dirfd, const char *name, size_t len)
{
    char tmp[256];

    if (len >= sizeof tmp || memchr(name, '\0', len)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(tmp, name, len);
    tmp[len] = '\0';
    return openat(dirfd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
}

/* The child cgroups where a runtime puts a container's processes when the
 * container's own cgroup.procs is empty: crun's "container" (a cgroup v2
 * leaf for the payload), systemd-nspawn's "payload" (its "supervisor"
 * sibling holds nspawn itself, in the host's network namespace). */
static const char *const agent_cgroup_payloads[] = {"container/cgroup.procs", "payload/cgroup.procs"};

static int child_pid(struct walk *w, int fd, struct agent_cgroup *row)
{
    size_t i, n;

    for (i = 0; i < sizeof agent_cgroup_payloads / sizeof agent_cgroup_payloads[0]; i++) {
        uint64_t pid;
        int rc = slurp(w, fd, agent_cgroup_payloads[i], &n);

        if (rc == AGENT_ETRUNC)
            return rc;
        if (rc != 0 || first_pid(w->buf, n, &pid) != AGENT_OK || pid == 0)
            continue;
        row->values[AGENT_CGROUP_PID] = pid;
        row->present |= (uint64_t)1 << AGENT_CGROUP_PID;
        break;
    }
    return AGENT_OK;
}

/* <pid>/net/dev under procfd into net[]: AGENT_EROWS or AGENT_ETRUNC when
 * a buffer is short, else 0 (with no interfaces when the file is gone or
 * malformed). */
static int network(struct walk *w, struct agent_cgroup *row)
{
    char path[40];
    size_t n, count = 0, line = 0;
    int rc;

    snprintf(path, sizeof path, "%llu/net/dev", (unsigned long long)row->values[AGENT_CGROUP_PID]);
    rc = slurp(w, w->procfd, path, &n);
    if (rc != 0)
        return rc == AGENT_ETRUNC ? rc : AGENT_OK;
    rc = agent_parse_netdev(w->buf, n, w->net + w->net_count, w->net_cap - w->net_count, &count, &line);
    if (rc == AGENT_EROWS)
        return rc;
    if (rc != AGENT_OK)
        return AGENT_OK;
    row->net_first = w->net_count;
    row->net_count = count;
    w->net_count += count;
    return AGENT_OK;
}

static int container(struct walk *w, int dirfd, const char *name, size_t len,
                     uint64_t runtime, size_t id_off, size_t id_len)
{
    struct agent_cgroup *row;
    size_t path_len = w->path_len + (w->path_len ? 1 : 0) + len;
    int fd, i, rc;

    size_t n;

    fd = open_dir(dirfd, name, len);
    if (fd < 0)
        return AGENT_OK;  /* gone since the listing */
    /* cpu.stat first: every v2 cgroup has one, so without it the cgroup
     * is gone, and takes no room in the caller's buffers. */
    rc = slurp(w, fd, agent_cgroup_files[AGENT_CGROUP_FILE_CPU_STAT], &n);
    if (rc != 0) {
        rc = rc == AGENT_ETRUNC ? rc : AGENT_OK;
        goto out;
    }
    if (w->count == w->rows_cap) {
        rc = AGENT_EROWS;
        goto out;
    }
    if (w->names_cap - w->names_len < path_len) {
        rc = AGENT_ETRUNC;
        goto out;
    }
    row = &w->rows[w->count];
    memset(row, 0, sizeof *row);
    row->path_off = w->names_len;
    row->path_len = path_len;
    row->runtime = runtime;
    row->id_off = w->names_len + path_len - len + id_off;
    row->id_len = id_len;
    if (w->pod_len) {
        row->pod_off = w->names_len + w->pod_off;
        row->pod_len = w->pod_len;
    }
    row->io_first = w->io_count;
    row->net_first = w->net_count;
    memcpy(w->names + w->names_len, w->path, w->path_len);
    if (w->path_len)
        w->names[w->names_len + w->path_len] = '/';
    memcpy(w->names + w->names_len + path_len - len, name, len);

    for (i = 0; i < AGENT_CGROUP_NFILES; i++) {
        if (i != AGENT_CGROUP_FILE_CPU_STAT) {
            rc = slurp(w, fd, agent_cgroup_files[i], &n);
            if (rc == AGENT_ETRUNC)
                goto out;
            if (rc != 0)
                continue;
        }
        rc = parse_file(w, i, w->buf, n, row, row->values);
        if (rc == AGENT_EROWS)
            goto out;  /* io[] is full: the caller grows it and walks again */
        if (rc != AGENT_OK) {
            w->err_file = (uint64_t)i;
            /* The caller reports the row's path; its figures, half parsed,
             * are dropped. */
            row->present = 0;
            memset(row->values, 0, sizeof row->values);
            w->io_count = (size_t)row->io_first;
            row->io_count = 0;
            row->net_first = w->net_count;
            w->names_len += path_len;
            w->count++;
            goto out;
        }
    }
    if (!(row->present & ((uint64_t)1 << AGENT_CGROUP_PID))) {
        rc = child_pid(w, fd, row);
        if (rc != AGENT_OK)
            goto out;
    }
    if (w->procfd >= 0 && (row->present & ((uint64_t)1 << AGENT_CGROUP_PID))) {
        rc = network(w, row);
        if (rc != AGENT_OK)
            goto out;
    }
    w->names_len += path_len;
    w->count++;
    rc = AGENT_OK;
out:
    close(fd);
    return rc;
}

static int visit(struct walk *w, int dirfd, const char *name, size_t len, void *arg);

static int descend(struct walk *w, int dirfd, const char *name, size_t len, size_t depth)
{
    size_t saved_len = w->path_len, saved_pod_off = w->pod_off, saved_pod_len = w->pod_len;
    size_t off, plen;
    int fd, rc;

    if (depth >= AGENT_CGROUP_DEPTH_MAX)
        return AGENT_OK;
    if (saved_len + 1 + len >= sizeof w->path)
        return AGENT_OK;  /* beyond PATH_MAX: no openat could name it either */
    fd = open_dir(dirfd, name, len);
    if (fd < 0)
        return AGENT_OK;  /* gone since the listing */
    if (w->path_len)
        w->path[w->path_len++] = '/';
    memcpy(w->path + w->path_len, name, len);
    w->path_len += len;
    if (pod_uid(name, len, &off, &plen)) {
        w->pod_off = w->path_len - len + off;
        w->pod_len = plen;
    }
    rc = each_dir(w, fd, visit, &depth);
    close(fd);
    w->path_len = saved_len;
    w->pod_off = saved_pod_off;
    w->pod_len = saved_pod_len;
    return rc;
}

static int visit(struct walk *w, int dirfd, const char *name, size_t len, void *arg)
{
    size_t depth = *(size_t *)arg, id_off, id_len;
    uint64_t runtime = agent_cgroup_classify(name, len, &id_off, &id_len);

    if (runtime)
        return container(w, dirfd, name, len, runtime, id_off, id_len);
    return descend(w, dirfd, name, len, depth + 1);
}

int agent_walk_cgroups(int dirfd, int procfd, char *names, size_t names_cap, size_t *names_len,
                       struct agent_cgroup *rows, size_t rows_cap, size_t *count,
                       struct agent_cgroup_io *io, size_t io_cap, size_t *io_count,
                       struct agent_netdev *net, size_t net_cap, size_t *net_count,
                       char *buf, size_t buf_cap, uint64_t *err_file)
{
    struct walk w = {
        .names = names, .names_cap = names_cap,
        .rows = rows, .rows_cap = rows_cap,
        .io = io, .io_cap = io_cap,
        .procfd = procfd, .net = net, .net_cap = net_cap,
        .buf = buf, .buf_cap = buf_cap,
    };
    size_t depth = 0;
    int rc, fd = dup(dirfd);

    /* A duplicate shares the caller's offset: rewind it, so a descriptor
     * kept from one scrape to the next lists the whole root each time. */
    if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        rc = AGENT_EIO;
    } else {
        rc = each_dir(&w, fd, visit, &depth);
    }
    if (fd >= 0) {
        int saved = errno;

        close(fd);
        errno = saved;
    }
    *names_len = w.names_len;
    *count = w.count;
    *io_count = w.io_count;
    *net_count = w.net_count;
    *err_file = w.err_file;
    return rc;
}

_Static_assert(sizeof ((struct agent_cgroup *)0)->values == AGENT_CGROUP_NFIELDS * sizeof(uint64_t),
               "values[] holds one field per AGENT_CGROUP_* field");
