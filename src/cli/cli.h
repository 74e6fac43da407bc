/*
 * cli.h - shared pieces of the archrouter command line: the command table entry type,
 * error reporting with the documented exit codes, and output checks.
 *
 * Exit codes (documented in `archrouter --help`):
 *   0  success
 *   1  the command failed (unreadable or invalid model, I/O error, ...)
 *   2  usage error (unknown command or option, missing argument)
 */
#ifndef AR_CLI_H
#define AR_CLI_H

#include <stdbool.h>
#include <stdio.h>

enum { AR_EXIT_OK = 0, AR_EXIT_FAIL = 1, AR_EXIT_USAGE = 2 };

typedef struct ar_cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
} ar_cli_command;

/* "archrouter: error: <message>" on stderr; returns AR_EXIT_FAIL. */
int ar_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "archrouter: error: <message>" and a hint to --help on stderr; returns AR_EXIT_USAGE. */
int ar_cli_usage_error(const char *command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Flush stdout and turn a failed write into an error exit. Call last in every command. */
int ar_cli_finish_output(int code);

/* True when arg is "-h" or "--help". */
bool ar_cli_is_help(const char *arg);

/* Read a whole stream into a malloc'd, NUL-terminated buffer; NULL on error. */
char *ar_cli_read_stream(FILE *f, size_t *len);

int ar_cmd_info(int argc, char **argv);
int ar_cmd_tokenize(int argc, char **argv);
int ar_cmd_bench(int argc, char **argv);

#endif
