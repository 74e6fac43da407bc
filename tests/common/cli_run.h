/*
 * cli_run.h - run the built `archrouter` program as a user would, for the CLI tests.
 *
 * The binary comes from ARCHROUTER_BIN (set by CTest). ARGS is shell syntax (quotes,
 * redirections of standard input); stdout and stderr are captured in temporary files and
 * returned as strings.
 */
#ifndef AR_TEST_CLI_RUN_H
#define AR_TEST_CLI_RUN_H

typedef struct run_result {
    int status; /* exit code, or -1 if it did not exit normally */
    char *out, *err;
} run_result;

run_result run(const char *args);
void run_free(run_result *r);

#endif
