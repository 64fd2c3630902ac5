/* Many small files under a directory descriptor in one call, and a
 * directory listing without a DIR * (which malloc()s): one crossing of the C
 * boundary for a whole sysfs tree instead of an open, a read and a close
 * from Python for every file. */
#define _GNU_SOURCE /* syscall(), DT_* */

#include <stdint.h>
#include <stddef.h>
#include "agent_api.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

/* A NUL-terminated copy of [p, p + len) for openat(): 0, or the errno the
 * kernel gives for the same string (ENAMETOOLONG from PATH_MAX bytes on),
 * or EINVAL for a NUL inside, which the kernel would silently cut at. */
static int copy_path(char *dst, const char *p, size_t len)
{
    if (len >= PATH_MAX)
        return ENAMETOOLONG;
    if (len && memchr(p, '\0', len))
        return EINVAL;
    if (len)
        memcpy(dst, p, len);
    dst[len] = '\0';
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

/* One file into [buf, buf + cap): *status and *err as agent_read_files
 * documents them, *len the bytes kept. */
static void read_one(int dirfd, const char *path, char *buf, size_t cap, int flags,
                     size_t *len, int64_t *status, uint64_t *err)
{
    struct stat st;
    size_t n = 0;
    int fd;

    *len = 0;
    *status = AGENT_OK;
    *err = 0;
    fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        goto fail;
    if (fstat(fd, &st) != 0)
        goto fail_close;
    if (!S_ISREG(st.st_mode)) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        goto fail_close;
    }
    if (flags & AGENT_READ_ONCE) {
        ssize_t r = read_retry(fd, buf, cap);

        if (r < 0)
            goto fail_close;
        n = (size_t)r;
    } else {
        char probe;
        ssize_t r;

        while (n < cap) {
            r = read_retry(fd, buf + n, cap - n);
            if (r < 0)
                goto fail_close;
            if (r == 0)
                break;
            n += (size_t)r;
        }
        if (n == cap) {
            /* Full: one byte more tells a file of exactly cap bytes from a
             * longer one. */
            r = read_retry(fd, &probe, 1);
            if (r < 0)
                goto fail_close;
            if (r > 0)
                *status = AGENT_ETRUNC;
        }
    }
    close(fd);
    *len = n;
    return;

fail_close:
    {
        int saved = errno;

        close(fd);
        errno = saved;
    }
fail:
    *status = AGENT_EIO;
    *err = (uint64_t)errno;
}

int agent_read_files(int dirfd, const char *names, size_t names_len,
                     struct agent_file_entry *entries, size_t count,
                     size_t file_cap, int flags,
                     char *data, size_t data_cap, size_t *done)
{
    char path[PATH_MAX];
    size_t used = 0;
    size_t i;

    *done = 0;
    for (i = 0; i < count; i++) {
        struct agent_file_entry *e = &entries[i];
        size_t len;
        int bad;

        if (e->name_off > names_len || e->name_len > names_len - e->name_off)
            return AGENT_ENAME;
        if (data_cap - used < file_cap)
            return AGENT_ETRUNC;
        e->data_off = used;
        e->data_len = 0;
        bad = copy_path(path, names + e->name_off, (size_t)e->name_len);
        if (bad) {
            e->status = AGENT_EIO;
            e->err = (uint64_t)bad;
        } else {
            read_one(dirfd, path, data + used, file_cap, flags, &len, &e->status, &e->err);
            e->data_len = len;
            used += len;
        }
        *done = i + 1;
    }
    return AGENT_OK;
}

/* struct linux_dirent64 (getdents64(2)): d_ino, d_off, d_reclen, d_type,
 * then the NUL-terminated name, each record 8-byte aligned. */
enum {
    DIRENT_RECLEN = 16,
    DIRENT_TYPE = 18,
    DIRENT_NAME = 19
};

static int is_dot_or_dotdot(const char *name, size_t len)
{
    return (len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.');
}

static uint64_t type_from_mode(mode_t mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return DT_REG;
    case S_IFDIR: return DT_DIR;
    case S_IFLNK: return DT_LNK;
    case S_IFIFO: return DT_FIFO;
    case S_IFSOCK: return DT_SOCK;
    case S_IFCHR: return DT_CHR;
    case S_IFBLK: return DT_BLK;
    default: return DT_UNKNOWN;
    }
}

int agent_list_dir(int dirfd, const char *path, size_t path_len,
                   char *names, size_t names_cap,
                   struct agent_dir_entry *entries, size_t entries_cap,
                   size_t *count, size_t *names_len)
{
    _Alignas(8) char buf[8192];
    char cpath[PATH_MAX];
    int rc = AGENT_OK;
    int bad, fd;

    *count = 0;
    *names_len = 0;
    bad = copy_path(cpath, path, path_len);
    if (bad) {
        errno = bad;
        return AGENT_EIO;
    }
    fd = openat(dirfd, cpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return AGENT_EIO;
    for (;;) {
        long got = syscall(SYS_getdents64, fd, buf, sizeof buf);
        size_t pos = 0;

        if (got < 0) {
            if (errno == EINTR)
                continue;
            rc = AGENT_EIO;
            break;
        }
        if (got == 0)
            break;
        while (pos + DIRENT_NAME < (size_t)got) {
            unsigned short reclen;
            const char *name = buf + pos + DIRENT_NAME;
            size_t max, len;
            uint64_t type;

            memcpy(&reclen, buf + pos + DIRENT_RECLEN, sizeof reclen);
            if (reclen <= DIRENT_NAME || reclen > (size_t)got - pos) {
                errno = EIO;  /* a record the kernel would never write */
                rc = AGENT_EIO;
                goto out;
            }
            max = (size_t)reclen - DIRENT_NAME;
            len = strnlen(name, max);
            type = (unsigned char)buf[pos + DIRENT_TYPE];
            pos += reclen;
            if (is_dot_or_dotdot(name, len))
                continue;
            if (*count == entries_cap) {
                rc = AGENT_EROWS;
                goto out;
            }
            if (names_cap - *names_len < len) {
                rc = AGENT_ETRUNC;
                goto out;
            }
            if (type == DT_UNKNOWN) {
                struct stat st;
                char tmp[256];

                /* A name from getdents64 is at most NAME_MAX (255) bytes. */
                if (len < sizeof tmp) {
                    memcpy(tmp, name, len);
                    tmp[len] = '\0';
                    if (fstatat(fd, tmp, &st, AT_SYMLINK_NOFOLLOW) == 0)
                        type = type_from_mode(st.st_mode);
                }
            }
            memcpy(names + *names_len, name, len);
            entries[*count] = (struct agent_dir_entry){
                .name_off = *names_len,
                .name_len = len,
                .d_type = type,
            };
            *names_len += len;
            (*count)++;
        }
    }
out:
    {
        int saved = errno;

        close(fd);
        errno = saved;
    }
    return rc;
}

int agent_realpath(const char *path, size_t path_len, char *out, size_t cap, size_t *len)
{
    char cpath[PATH_MAX], resolved[PATH_MAX];
    int bad = copy_path(cpath, path, path_len);
    size_t n;

    *len = 0;
    if (bad) {
        errno = bad;
        return AGENT_EIO;
    }
    /* With a caller's PATH_MAX buffer realpath(3) returns no allocation. */
    if (!realpath(cpath, resolved))
        return AGENT_EIO;
    n = strlen(resolved);
    *len = n;
    if (n > cap)
        return AGENT_ETRUNC;
    memcpy(out, resolved, n);
    return AGENT_OK;
}
