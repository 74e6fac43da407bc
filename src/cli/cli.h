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

#include "archrouter.h"

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

/* Milliseconds on the monotonic clock. */
double ar_cli_now_ms(void);

/* The median of v[0..n) (n >= 1; sorts v in place). */
double ar_cli_median(double *v, int n);

/* The index of the largest of x[0..n) (the first one on ties). */
int ar_cli_argmax(const float *x, int n);

/* Read a whole stream into a malloc'd, NUL-terminated buffer; NULL on error. */
char *ar_cli_read_stream(FILE *f, size_t *len);

/* The router model's path: model_opt (-m) as given, else the config's
 * archrouter.router.model (a file relative to the config's folder, or a hub reference),
 * else $ARCHROUTER_MODEL, else the default hub file; hub references are looked up in the
 * download cache, never downloaded. Returns an exit code; on failure the message (with the
 * way out: archrouter pull) is printed. */
int ar_cli_resolve_model(const char *model_opt, const char *config_path, const ar_config *cfg,
                         char *path, size_t cap);

/* Engine and sequence settings shared by the commands that run the model. */
typedef struct ar_cli_engine_opts {
    ar_engine_params ep;
    ar_seq_params sp;
    bool precision_given; /* --precision was on the command line (it beats a config file) */
} ar_cli_engine_opts;

extern const char ar_cli_engine_help[]; /* the "Engine options:" block of --help */

void ar_cli_engine_opts_init(ar_cli_engine_opts *o);

/* If argv[*i] is an engine option, consume it and its value and return 1; 0 if it is not
 * one; -1 after reporting a bad value (return AR_EXIT_USAGE then). */
int ar_cli_engine_option(const char *cmd, int argc, char **argv, int *i, ar_cli_engine_opts *o);

/* A model with its engine (and tokenizer when asked), opened with the options. */
typedef struct ar_cli_model {
    ar_model *model;
    ar_engine *engine;
    ar_tokenizer *tok;
    double load_ms;
} ar_cli_model;

/* Returns an exit code; on failure the message is printed (close *out anyway). */
int ar_cli_open_model(const char *path, const ar_cli_engine_opts *o, bool tokenizer,
                      ar_cli_model *out);
void ar_cli_close_model(ar_cli_model *m);

int ar_cmd_info(int argc, char **argv);
int ar_cmd_generate(int argc, char **argv);
int ar_cmd_logits(int argc, char **argv);
int ar_cmd_tokenize(int argc, char **argv);
int ar_cmd_bench(int argc, char **argv);
int ar_cmd_pull(int argc, char **argv);
int ar_cmd_route(int argc, char **argv);
int ar_cmd_eval(int argc, char **argv);
int ar_cmd_serve(int argc, char **argv);

#endif
