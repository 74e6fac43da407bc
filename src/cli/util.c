/*
 * util.c - helpers shared by the commands: error reporting with the documented exit codes,
 * output checks, reading a stream.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void report(const char *fmt, va_list ap) {
    fputs("archrouter: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int ar_cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report(fmt, ap);
    va_end(ap);
    return AR_EXIT_FAIL;
}

int ar_cli_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'archrouter %s%s--help'.\n", command ? command : "", command ? " " : "");
    return AR_EXIT_USAGE;
}

int ar_cli_finish_output(int code) {
    if (fflush(stdout) != 0 || ferror(stdout)) {
        int e = errno;
        fprintf(stderr, "archrouter: error: writing output: %s\n", e ? strerror(e) : "failed");
        return AR_EXIT_FAIL;
    }
    return code;
}

bool ar_cli_is_help(const char *arg) {
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

char *ar_cli_read_stream(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *nb = realloc(buf, 2 * cap + 1);
        if (!nb) {
            free(buf);
            return NULL;
        }
        buf = nb;
        cap *= 2;
    }
    if (!buf || ferror(f)) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}
