/* The one declaration of the C core's interface.
 *
 * ffibuild.py feeds this file, unchanged, to cffi's cdef(), and every C source
 * includes it after <stdint.h> and <stddef.h>; so it has no include guards,
 * no #includes and no macros: cffi checks each layout against the compiler.
 *
 * Every struct field is a uint64_t, a double or a char array whose size is a
 * multiple of 8, so the layouts have no padding and the pure-Python backend
 * (src/agent/procfs/layout.py) writes the very same bytes with struct.Struct.
 * `present` is a bitmask: bit i set means field i of the enum below was in
 * the file.  docs/PARSERS.md specifies the grammar both backends accept.
 */

enum {
    AGENT_ABI_VERSION = 9,
    AGENT_NAME_MAX = 64,
    /* A "cpuN" line's N is below this (the kernel's NR_CPUS is at most
     * 8192): a bound on what a collector fills in for the CPUs missing
     * below the highest one. */
    AGENT_MAX_CPUS = 65536
};

/* Status codes: 0 or one of these, never anything else. */
enum {
    AGENT_OK = 0,
    AGENT_ETRUNC = -1,   /* the file did not fit in the buffer: grow it and retry */
    AGENT_EROWS = -2,    /* more rows than the row array holds: grow it and retry */
    AGENT_EFORMAT = -3,  /* a line does not have the documented shape */
    AGENT_ERANGE = -4,   /* a counter does not fit in 64 bits */
    AGENT_ENAME = -5,    /* a device name is empty or longer than AGENT_NAME_MAX */
    AGENT_EMISSING = -6, /* a line or key the source cannot do without is absent */
    AGENT_EIO = -7       /* read(2) failed; errno says why */
};

/* /proc/stat: the aggregate "cpu" line (clock ticks), the first number of
 * the "intr" line (all interrupts), the scalar lines, and the number of
 * "cpuN" lines (one per online CPU), each of which is also a row of
 * struct agent_cpu. */
enum {
    AGENT_STAT_CPU_USER, AGENT_STAT_CPU_NICE, AGENT_STAT_CPU_SYSTEM,
    AGENT_STAT_CPU_IDLE, AGENT_STAT_CPU_IOWAIT, AGENT_STAT_CPU_IRQ,
    AGENT_STAT_CPU_SOFTIRQ, AGENT_STAT_CPU_STEAL, AGENT_STAT_CPU_GUEST,
    AGENT_STAT_CPU_GUEST_NICE, AGENT_STAT_INTR, AGENT_STAT_CTXT, AGENT_STAT_BTIME,
    AGENT_STAT_PROCESSES, AGENT_STAT_PROCS_RUNNING, AGENT_STAT_PROCS_BLOCKED,
    AGENT_STAT_CPU_COUNT,
    AGENT_STAT_NFIELDS
};
struct agent_stat {
    uint64_t present;
    uint64_t cpu_user;
    uint64_t cpu_nice;
    uint64_t cpu_system;
    uint64_t cpu_idle;
    uint64_t cpu_iowait;
    uint64_t cpu_irq;
    uint64_t cpu_softirq;
    uint64_t cpu_steal;
    uint64_t cpu_guest;
    uint64_t cpu_guest_nice;
    uint64_t intr;
    uint64_t ctxt;
    uint64_t btime;
    uint64_t processes;
    uint64_t procs_running;
    uint64_t procs_blocked;
    uint64_t cpu_count;
};

/* One "cpuN" line of /proc/stat: N, then the aggregate line's columns in
 * the same order (bit i is column i). */
enum {
    AGENT_CPU_USER, AGENT_CPU_NICE, AGENT_CPU_SYSTEM, AGENT_CPU_IDLE,
    AGENT_CPU_IOWAIT, AGENT_CPU_IRQ, AGENT_CPU_SOFTIRQ, AGENT_CPU_STEAL,
    AGENT_CPU_GUEST, AGENT_CPU_GUEST_NICE,
    AGENT_CPU_NFIELDS
};
struct agent_cpu {
    uint64_t present;
    uint64_t cpu;
    uint64_t user;
    uint64_t nice;
    uint64_t system;
    uint64_t idle;
    uint64_t iowait;
    uint64_t irq;
    uint64_t softirq;
    uint64_t steal;
    uint64_t guest;
    uint64_t guest_nice;
};

/* /proc/meminfo: values as the kernel prints them, in kB. */
enum {
    AGENT_MEMINFO_MEM_TOTAL, AGENT_MEMINFO_MEM_FREE,
    AGENT_MEMINFO_MEM_AVAILABLE, AGENT_MEMINFO_BUFFERS,
    AGENT_MEMINFO_CACHED, AGENT_MEMINFO_SWAP_CACHED,
    AGENT_MEMINFO_ACTIVE, AGENT_MEMINFO_INACTIVE,
    AGENT_MEMINFO_ACTIVE_FILE, AGENT_MEMINFO_INACTIVE_FILE,
    AGENT_MEMINFO_SWAP_TOTAL, AGENT_MEMINFO_SWAP_FREE,
    AGENT_MEMINFO_DIRTY, AGENT_MEMINFO_WRITEBACK, AGENT_MEMINFO_SHMEM,
    AGENT_MEMINFO_SLAB, AGENT_MEMINFO_SRECLAIMABLE,
    AGENT_MEMINFO_SUNRECLAIM,
    AGENT_MEMINFO_NFIELDS
};
struct agent_meminfo {
    uint64_t present;
    uint64_t mem_total_kb;
    uint64_t mem_free_kb;
    uint64_t mem_available_kb;
    uint64_t buffers_kb;
    uint64_t cached_kb;
    uint64_t swap_cached_kb;
    uint64_t active_kb;
    uint64_t inactive_kb;
    uint64_t active_file_kb;
    uint64_t inactive_file_kb;
    uint64_t swap_total_kb;
    uint64_t swap_free_kb;
    uint64_t dirty_kb;
    uint64_t writeback_kb;
    uint64_t shmem_kb;
    uint64_t slab_kb;
    uint64_t sreclaimable_kb;
    uint64_t sunreclaim_kb;
};

/* /proc/diskstats: one row per line.  Bits follow the kernel's field order
 * (Documentation/admin-guide/iostats.rst): 11 fields on every kernel since
 * 2.6.25, 15 with discards (4.18), 17 with flushes (5.5); the 4-field
 * partition lines of 2.6 kernels before 2.6.25 fill reads, sectors read,
 * writes and sectors written only. */
enum {
    AGENT_DISK_READS_COMPLETED, AGENT_DISK_READS_MERGED,
    AGENT_DISK_SECTORS_READ, AGENT_DISK_READ_TIME_MS,
    AGENT_DISK_WRITES_COMPLETED, AGENT_DISK_WRITES_MERGED,
    AGENT_DISK_SECTORS_WRITTEN, AGENT_DISK_WRITE_TIME_MS,
    AGENT_DISK_IO_IN_PROGRESS, AGENT_DISK_IO_TIME_MS,
    AGENT_DISK_WEIGHTED_IO_TIME_MS, AGENT_DISK_DISCARDS_COMPLETED,
    AGENT_DISK_DISCARDS_MERGED, AGENT_DISK_SECTORS_DISCARDED,
    AGENT_DISK_DISCARD_TIME_MS, AGENT_DISK_FLUSHES_COMPLETED,
    AGENT_DISK_FLUSH_TIME_MS,
    AGENT_DISK_NFIELDS
};
struct agent_diskstats {
    uint64_t present;
    uint64_t major;
    uint64_t minor;
    uint64_t reads_completed;
    uint64_t reads_merged;
    uint64_t sectors_read;
    uint64_t read_time_ms;
    uint64_t writes_completed;
    uint64_t writes_merged;
    uint64_t sectors_written;
    uint64_t write_time_ms;
    uint64_t io_in_progress;
    uint64_t io_time_ms;
    uint64_t weighted_io_time_ms;
    uint64_t discards_completed;
    uint64_t discards_merged;
    uint64_t sectors_discarded;
    uint64_t discard_time_ms;
    uint64_t flushes_completed;
    uint64_t flush_time_ms;
    uint64_t name_len;
    char name[64];
};

/* /proc/net/dev: one row per interface, the 16 counters in file order. */
enum {
    AGENT_NETDEV_RX_BYTES, AGENT_NETDEV_RX_PACKETS, AGENT_NETDEV_RX_ERRS,
    AGENT_NETDEV_RX_DROP, AGENT_NETDEV_RX_FIFO, AGENT_NETDEV_RX_FRAME,
    AGENT_NETDEV_RX_COMPRESSED, AGENT_NETDEV_RX_MULTICAST,
    AGENT_NETDEV_TX_BYTES, AGENT_NETDEV_TX_PACKETS, AGENT_NETDEV_TX_ERRS,
    AGENT_NETDEV_TX_DROP, AGENT_NETDEV_TX_FIFO, AGENT_NETDEV_TX_COLLS,
    AGENT_NETDEV_TX_CARRIER, AGENT_NETDEV_TX_COMPRESSED,
    AGENT_NETDEV_NFIELDS
};
struct agent_netdev {
    uint64_t present;
    uint64_t rx_bytes;
    uint64_t rx_packets;
    uint64_t rx_errs;
    uint64_t rx_drop;
    uint64_t rx_fifo;
    uint64_t rx_frame;
    uint64_t rx_compressed;
    uint64_t rx_multicast;
    uint64_t tx_bytes;
    uint64_t tx_packets;
    uint64_t tx_errs;
    uint64_t tx_drop;
    uint64_t tx_fifo;
    uint64_t tx_colls;
    uint64_t tx_carrier;
    uint64_t tx_compressed;
    uint64_t name_len;
    char name[64];
};

/* /proc/loadavg */
enum {
    AGENT_LOADAVG_LOAD1, AGENT_LOADAVG_LOAD5, AGENT_LOADAVG_LOAD15,
    AGENT_LOADAVG_RUNNABLE, AGENT_LOADAVG_THREADS, AGENT_LOADAVG_LAST_PID,
    AGENT_LOADAVG_NFIELDS
};
struct agent_loadavg {
    uint64_t present;
    double load1;
    double load5;
    double load15;
    uint64_t runnable;
    uint64_t threads;
    uint64_t last_pid;
};

/* /proc/uptime: seconds since boot, and idle seconds summed over CPUs. */
enum {
    AGENT_UPTIME_UPTIME, AGENT_UPTIME_IDLE,
    AGENT_UPTIME_NFIELDS
};
struct agent_uptime {
    uint64_t present;
    double uptime_seconds;
    double idle_seconds;
};

/* Many small files under one directory descriptor in one call (sysfs
 * trees: hwmon chips).  Strings travel as offset and length in the caller's
 * buffers, never in fixed-size fields.
 *
 * agent_read_files: entry i names names[name_off, name_off + name_len), a
 * path relative to dirfd (no NUL inside: EINVAL); C opens it without
 * blocking (O_NONBLOCK, so a FIFO's open returns at once), reads it only if
 * fstat says it is a regular file (EISDIR for a directory, EINVAL for
 * anything else), and appends at most file_cap bytes of it to data, where
 * data_off/data_len say where.  status is 0, AGENT_ETRUNC (the file had
 * more than file_cap bytes: data holds the first file_cap), or AGENT_EIO
 * with the errno in err (open, fstat or read failed: a vanished file is
 * ENOENT).  With AGENT_READ_ONCE a file gets one read(2) of file_cap bytes
 * and no more, as node_exporter reads sysfs attributes (a driver may fail a
 * second read), so no file is reported truncated.
 *
 * Returns 0, AGENT_ETRUNC when data_cap - bytes used so far is below
 * file_cap before some file (entries from *done on are not filled: grow
 * data to count * file_cap and call again), or AGENT_ENAME for an entry
 * whose name lies outside names.  *done counts the entries filled. */
enum {
    AGENT_READ_ONCE = 1
};
struct agent_file_entry {
    uint64_t name_off;
    uint64_t name_len;
    uint64_t data_off;
    uint64_t data_len;
    int64_t status;
    uint64_t err;
};
int agent_read_files(int dirfd, const char *names, size_t names_len,
                     struct agent_file_entry *entries, size_t count,
                     size_t file_cap, int flags,
                     char *data, size_t data_cap, size_t *done);

/* agent_list_dir: the entries of the directory `path` (relative to dirfd,
 * path_len bytes, no NUL inside), "." and ".." left out, in the order the
 * kernel gives them.  Names are appended to names; d_type is the dirent
 * type (DT_DIR, DT_LNK, ...), filled in with fstatat where the file system
 * says DT_UNKNOWN (left DT_UNKNOWN if the entry vanished meanwhile).
 * Returns 0; AGENT_ETRUNC when names_cap bytes do not hold the names, or
 * AGENT_EROWS when entries_cap entries are too few (grow and call again:
 * *count and *names_len say how far it got); AGENT_EIO with errno set when
 * the open or a read of the directory failed (ENOTDIR for a file). */
struct agent_dir_entry {
    uint64_t name_off;
    uint64_t name_len;
    uint64_t d_type;
};
int agent_list_dir(int dirfd, const char *path, size_t path_len,
                   char *names, size_t names_cap,
                   struct agent_dir_entry *entries, size_t entries_cap,
                   size_t *count, size_t *names_len);

/* agent_realpath: the C library's realpath(3) of path (path_len bytes, no
 * NUL inside: EINVAL) into out: 0 and *len; AGENT_ETRUNC when cap bytes do
 * not hold it (*len says how many would); AGENT_EIO with errno set when a
 * component is missing (ENOENT), not a directory, a symlink loop, ...  For
 * a hwmon chip's `device` link, where os.path.realpath's lstat of every
 * component from Python cost a third of the collector. */
int agent_realpath(const char *path, size_t path_len, char *out, size_t cap, size_t *len);

int agent_abi_version(void);

/* Tune glibc's malloc for the scrape loop (see tune_malloc.c): 0, or
 * AGENT_EMISSING where the C library is not glibc, AGENT_EIO if mallopt
 * refused, AGENT_ERANGE for a figure above INT_MAX.  arena_max 0 keeps
 * glibc's arena count.  Process-wide: the agent calls it once at start-up,
 * before it starts a thread. */
int agent_tune_malloc(size_t mmap_threshold, size_t trim_threshold, size_t arena_max);

/* Give the free memory of glibc's heap back to the kernel, keeping pad bytes
 * at its top (malloc_trim): 0, or AGENT_EMISSING where the C library is not
 * glibc.  For after an oversized file, which the trim threshold set above
 * would otherwise keep resident for good. */
int agent_trim_malloc(size_t pad);

/* Read an open file from offset 0 into buf (pread, so a kept-open /proc file
 * is re-read whole).  AGENT_ETRUNC when cap bytes did not hold it all. */
int agent_read_fd(int fd, char *buf, size_t cap, size_t *len);

/* Parsers: bytes in (no NUL terminator needed; NULs are ordinary bytes),
 * struct out.  *err_line is the 1-based line an error was found on (0 when
 * the error concerns the whole file). */
int agent_parse_stat(const char *buf, size_t len, struct agent_stat *out,
                     struct agent_cpu *rows, size_t cap, size_t *count,
                     size_t *err_line);
int agent_parse_meminfo(const char *buf, size_t len,
                        struct agent_meminfo *out, size_t *err_line);
int agent_parse_diskstats(const char *buf, size_t len,
                          struct agent_diskstats *rows, size_t cap,
                          size_t *count, size_t *err_line);
int agent_parse_netdev(const char *buf, size_t len,
                       struct agent_netdev *rows, size_t cap,
                       size_t *count, size_t *err_line);
int agent_parse_loadavg(const char *buf, size_t len,
                        struct agent_loadavg *out, size_t *err_line);
int agent_parse_uptime(const char *buf, size_t len,
                       struct agent_uptime *out, size_t *err_line);

/* Read and parse in one call: one crossing of the C boundary per file per
 * scrape.  *len reports how much was read, so the caller can size buf. */
int agent_load_stat(int fd, char *buf, size_t cap, size_t *len,
                    struct agent_stat *out, struct agent_cpu *rows,
                    size_t rows_cap, size_t *count, size_t *err_line);
int agent_load_meminfo(int fd, char *buf, size_t cap, size_t *len,
                       struct agent_meminfo *out, size_t *err_line);
int agent_load_diskstats(int fd, char *buf, size_t cap, size_t *len,
                         struct agent_diskstats *rows, size_t rows_cap,
                         size_t *count, size_t *err_line);
int agent_load_netdev(int fd, char *buf, size_t cap, size_t *len,
                      struct agent_netdev *rows, size_t rows_cap,
                      size_t *count, size_t *err_line);
int agent_load_loadavg(int fd, char *buf, size_t cap, size_t *len,
                       struct agent_loadavg *out, size_t *err_line);
int agent_load_uptime(int fd, char *buf, size_t cap, size_t *len,
                      struct agent_uptime *out, size_t *err_line);

/* /proc/PID/stat of every process, in one call (the processes collector).
 *
 * agent_walk_procs lists procfd (a /proc root: the numeric entries only, in
 * the kernel's order) and reads PID/stat of each with openat.  A row per
 * process: its pid, its state letter, and the fields of stat(5) the
 * collector uses (threads, utime, stime and starttime in clock ticks, rss
 * in pages); comm, which may hold any byte (spaces, ')', newlines), is cut
 * between the first '(' and the LAST ')' and travels as offset and length
 * into comms.  A process that exits during the walk (ENOENT or ESRCH) is
 * skipped.  The state token after comm must be one byte.
 *
 * states counts the processes per state byte.  With AGENT_PROCS_THREADS,
 * thread_states counts the threads per state byte, as node_exporter does:
 * a process with one thread counts its own state; one with more has its
 * task/ directory listed and every other task's stat read (a task or a
 * task/ directory gone meanwhile is skipped).
 *
 * Returns 0; AGENT_EROWS (rows_cap too small) or AGENT_ETRUNC (comms_cap
 * too small): the walk went on to the end without storing, so count and
 * comms_len say what the whole walk needs; AGENT_EFORMAT or AGENT_ERANGE
 * for a stat file that is malformed or 4096 bytes or longer (err_pid,
 * err_tid name it; err_tid is 0 for the process's own stat); AGENT_EIO
 * with err = errno when procfd cannot be listed or a stat file cannot be
 * opened or read for another reason than the process being gone. */
enum {
    AGENT_PROCS_THREADS = 1,
    AGENT_PROC_STAT_MAX = 4096
};
struct agent_proc {
    uint64_t pid;
    uint64_t state;
    uint64_t threads;
    uint64_t utime;
    uint64_t stime;
    uint64_t starttime;
    uint64_t rss_pages;
    uint64_t comm_off;
    uint64_t comm_len;
};
struct agent_proc_walk {
    uint64_t count;
    uint64_t comms_len;
    uint64_t err_pid;
    uint64_t err_tid;
    uint64_t err;
    uint64_t states[256];
    uint64_t thread_states[256];
};
int agent_walk_procs(int procfd, int flags, struct agent_proc *rows, size_t rows_cap,
                     char *comms, size_t comms_cap, struct agent_proc_walk *out);
/* cgroup v2 containers (csrc/walk_cgroups.c; docs/PARSERS.md, "cgroup v2").
 *
 * agent_walk_cgroups lists every directory under dirfd (the cgroup2 mount)
 * with openat() and getdents64, at most AGENT_CGROUP_DEPTH_MAX levels deep,
 * and takes a directory whose name follows a runtime's layout
 * (AGENT_CGROUP_DOCKER ...) for a container: it does not descend into it,
 * and fills one row from its files, AGENT_CGROUP_FILE_* in that order.  A
 * file that cannot be read (no such controller enabled, gone) leaves its
 * fields out of `present`; a container without a readable cpu.stat (which
 * every v2 cgroup has) has gone meanwhile and gets no row.  values[i] is
 * field i of the enum below (memory.max "max" is UINT64_MAX; cpu.max's
 * quota is present only when it is a number); PID is the first pid of
 * cgroup.procs, or of a child cgroup's when the container's own is empty.
 *
 * Strings travel as offsets into names: path (relative to dirfd, no
 * leading "/"), the id within it (64 hex digits, or an nspawn machine's
 * escaped name) and the pod uid of the innermost kubelet pod cgroup above
 * it (systemd form with "_", pod_len 0 when none).  A container's io.stat
 * devices are io[io_first, io_first + io_count).
 *
 * With procfd >= 0 (the procfs root), a container with a PID also gets the
 * interfaces of <PID>/net/dev under it, parsed as agent_parse_netdev does,
 * in net[net_first, net_first + net_count): the counters of the process's
 * network namespace, as cAdvisor reads them.  A net/dev that is gone (the
 * process exited) or malformed gives the container no interfaces; a
 * malformed one still needs room in net for the rows before its bad line
 * (AGENT_EROWS until it has it).
 *
 * Returns 0; AGENT_ETRUNC when names or buf (which must hold any one file)
 * is too small, AGENT_EROWS when rows, io or net are: grow them all and call
 * again; AGENT_EFORMAT or AGENT_ERANGE for a file that does not have its
 * documented shape: rows[*count - 1] is its container (path and id only,
 * no figures) and *err_file says which file; AGENT_EIO with errno when dirfd cannot be listed. */
enum {
    AGENT_CGROUP_DEPTH_MAX = 16,
    AGENT_CGROUP_DOCKER = 1, AGENT_CGROUP_CONTAINERD = 2, AGENT_CGROUP_CRIO = 3,
    AGENT_CGROUP_PODMAN = 4, AGENT_CGROUP_CGROUPFS = 5, AGENT_CGROUP_NSPAWN = 6
};
enum {
    AGENT_CGROUP_FILE_CPU_STAT, AGENT_CGROUP_FILE_CPU_MAX, AGENT_CGROUP_FILE_MEMORY_CURRENT,
    AGENT_CGROUP_FILE_MEMORY_MAX, AGENT_CGROUP_FILE_MEMORY_STAT, AGENT_CGROUP_FILE_MEMORY_EVENTS,
    AGENT_CGROUP_FILE_IO_STAT, AGENT_CGROUP_FILE_CPU_PRESSURE, AGENT_CGROUP_FILE_MEMORY_PRESSURE,
    AGENT_CGROUP_FILE_IO_PRESSURE, AGENT_CGROUP_FILE_PROCS,
    AGENT_CGROUP_NFILES
};
enum {
    AGENT_CGROUP_USAGE_USEC, AGENT_CGROUP_USER_USEC, AGENT_CGROUP_SYSTEM_USEC,
    AGENT_CGROUP_NR_PERIODS, AGENT_CGROUP_NR_THROTTLED, AGENT_CGROUP_THROTTLED_USEC,
    AGENT_CGROUP_CPU_QUOTA_USEC, AGENT_CGROUP_MEMORY_CURRENT, AGENT_CGROUP_MEMORY_MAX,
    AGENT_CGROUP_MEMORY_ANON, AGENT_CGROUP_MEMORY_FILE, AGENT_CGROUP_MEMORY_INACTIVE_FILE,
    AGENT_CGROUP_OOM_KILL, AGENT_CGROUP_CPU_SOME_USEC, AGENT_CGROUP_CPU_FULL_USEC,
    AGENT_CGROUP_MEMORY_SOME_USEC, AGENT_CGROUP_MEMORY_FULL_USEC, AGENT_CGROUP_IO_SOME_USEC,
    AGENT_CGROUP_IO_FULL_USEC, AGENT_CGROUP_PID,
    AGENT_CGROUP_NFIELDS
};
struct agent_cgroup {
    uint64_t present;
    uint64_t values[20]; /* AGENT_CGROUP_NFIELDS */
    uint64_t runtime;
    uint64_t path_off;
    uint64_t path_len;
    uint64_t id_off;
    uint64_t id_len;
    uint64_t pod_off;
    uint64_t pod_len;
    uint64_t io_first;
    uint64_t io_count;
    uint64_t net_first;
    uint64_t net_count;
};
enum {
    AGENT_CGROUP_IO_RBYTES, AGENT_CGROUP_IO_WBYTES
};
struct agent_cgroup_io {
    uint64_t major;
    uint64_t minor;
    uint64_t present;
    uint64_t rbytes;
    uint64_t wbytes;
};
int agent_walk_cgroups(int dirfd, int procfd, char *names, size_t names_cap, size_t *names_len,
                       struct agent_cgroup *rows, size_t rows_cap, size_t *count,
                       struct agent_cgroup_io *io, size_t io_cap, size_t *io_count,
                       struct agent_netdev *net, size_t net_cap, size_t *net_count,
                       char *buf, size_t buf_cap, uint64_t *err_file);

/* One container file's parser, as the walk applies it (for the fuzzer and
 * the parity tests): `which` is an AGENT_CGROUP_FILE_*; row is zeroed and
 * filled (its io_first/io_count index io). */
int agent_parse_cgroup_file(int which, const char *buf, size_t len, struct agent_cgroup *row,
                            struct agent_cgroup_io *io, size_t io_cap, size_t *io_count);
