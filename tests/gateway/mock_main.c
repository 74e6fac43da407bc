/*
 * mock_main.c - the mock upstream as a program, for bench/gateway.sh and manual runs:
 * `ar_mock_upstream PORT` serves until killed (SIGTERM/SIGINT).
 */
#include "mock_upstream.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: ar_mock_upstream PORT\n");
        return 2;
    }
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGINT);
    sigaddset(&s, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    mock_upstream *m = mock_start(atoi(argv[1]));
    if (!m) {
        fprintf(stderr, "ar_mock_upstream: cannot listen on port %s\n", argv[1]);
        return 1;
    }
    printf("%d\n", mock_port(m));
    fflush(stdout);
    int sig;
    sigwait(&s, &sig);
    mock_stop(m);
    return 0;
}
