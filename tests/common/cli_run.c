/*
 * cli_run.c - running `archrouter ARGS` through /bin/sh with captured output (cli_run.h).
 */
#include "cli_run.h"

#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

void run_free(run_result *r) {
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

run_result run(const char *args) {
    const char *bin = getenv("ARCHROUTER_BIN");
    assert_non_null(bin);
    const char *dir = ar_test_temp_dir();
    assert_non_null(dir);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s >'%s/out' 2>'%s/err'", bin, args, dir, dir);
    int st = system(cmd);
    run_result r = {.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1};
    char path[512];
    snprintf(path, sizeof path, "%s/out", dir);
    r.out = ar_test_read_file(path, NULL);
    snprintf(path, sizeof path, "%s/err", dir);
    r.err = ar_test_read_file(path, NULL);
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}
