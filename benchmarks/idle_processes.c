/* Real processes for benchmarks/compare_processes.py --real: forks N
 * children that sleep in pause(2); one in ten (a fixed sequence) has 2 to 8
 * threads, as gen_processes.py's trees.  Prints "ready" when all are
 * started and exits when its stdin reaches end of file; the children die
 * with it (PR_SET_PDEATHSIG), so nothing outlives the benchmark.
 *
 *     idle_processes N */
#define _GNU_SOURCE /* prctl's PR_SET_PDEATHSIG */

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

static int child(int threads)
{
    pthread_attr_t attr;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
        return 1;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 65536);
    for (int t = 1; t < threads; t++) {
        pthread_t th;

        if (pthread_create(&th, &attr, idle, NULL) != 0)
            return 1;
    }
    idle(NULL);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned seed = 1;
    char c;
    int n;

    if (argc != 2 || (n = atoi(argv[1])) < 0) {
        fprintf(stderr, "usage: idle_processes N\n");
        return 2;
    }
    for (int i = 0; i < n; i++) {
        int threads = 1;
        pid_t pid;

        seed = seed * 1103515245u + 12345u;
        if ((seed >> 16) % 10 == 0)
            threads = 2 + (int)((seed >> 8) % 7);
        pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0)
            _exit(child(threads));
    }
    printf("ready\n");
    fflush(stdout);
    while (read(0, &c, 1) > 0)
        ;
    return 0;
}
