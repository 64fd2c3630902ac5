/* The floor for the cgroups comparison (benchmarks/compare_cgroups.py):
 * what any container collector must at least do per scrape, and nothing
 * more: list the directories the agent lists, and open, read to the end
 * and close the files it reads, in C, with one reused buffer.  No parsing,
 * no metrics, no HTTP.
 *
 *   floor_cgroups ROOT LIST PASSES
 *
 * LIST has one line per entry, "d path" (a directory to list) or "f path"
 * (a file to read), relative to ROOT.  Prints the CPU seconds (user +
 * system, getrusage) per pass. */
#define _GNU_SOURCE

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    static char buf[65536];
    char line[4200];
    char **paths = NULL;
    char *kinds = NULL;
    size_t n = 0, cap = 0, i;
    long passes, p;
    unsigned long long sink = 0;
    struct rusage before, after;
    FILE *list;
    int root;

    if (argc != 4) {
        fprintf(stderr, "usage: floor_cgroups ROOT LIST PASSES\n");
        return 2;
    }
    root = open(argv[1], O_RDONLY | O_DIRECTORY);
    list = fopen(argv[2], "r");
    passes = strtol(argv[3], NULL, 10);
    if (root < 0 || !list || passes <= 0) {
        perror("floor_cgroups");
        return 2;
    }
    while (fgets(line, sizeof line, list)) {
        size_t len = strcspn(line, "\n");

        line[len] = '\0';
        if (len < 3)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 1024;
            paths = realloc(paths, cap * sizeof *paths);
            kinds = realloc(kinds, cap);
            if (!paths || !kinds)
                return 2;
        }
        kinds[n] = line[0];
        paths[n] = strdup(line + 2);
        if (!paths[n])
            return 2;
        n++;
    }
    fclose(list);

    getrusage(RUSAGE_SELF, &before);
    for (p = 0; p < passes; p++) {
        for (i = 0; i < n; i++) {
            if (kinds[i] == 'd') {
                int fd = openat(root, paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                DIR *d = fd < 0 ? NULL : fdopendir(fd);
                struct dirent *e;

                if (!d)
                    continue;
                while ((e = readdir(d)) != NULL)
                    sink += (unsigned char)e->d_name[0];
                closedir(d);
            } else {
                int fd = openat(root, paths[i], O_RDONLY | O_CLOEXEC);
                ssize_t r;

                if (fd < 0)
                    continue;
                while ((r = read(fd, buf, sizeof buf)) > 0)
                    sink += (unsigned char)buf[0];
                close(fd);
            }
        }
    }
    getrusage(RUSAGE_SELF, &after);
    printf("%.9f %llu\n",
           ((after.ru_utime.tv_sec - before.ru_utime.tv_sec) + (after.ru_stime.tv_sec - before.ru_stime.tv_sec)
            + ((after.ru_utime.tv_usec - before.ru_utime.tv_usec) + (after.ru_stime.tv_usec - before.ru_stime.tv_usec))
              / 1e6) / (double)passes,
           sink % 10);
    return 0;
}
