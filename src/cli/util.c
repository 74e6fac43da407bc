/*
 * util.c - helpers shared by the commands: error reporting with the documented exit codes,
 * output checks, reading a stream.
 */
#include "cli.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

static bool is_file(const char *p) {
    struct stat st;
    return p && stat(p, &st) == 0;
}

int ar_cli_resolve_model(const char *model_opt, const char *config_path, const ar_config *cfg,
                         char *path, size_t cap) {
    const char *ref = model_opt;
    const char *from = "-m";
    if (!ref && ar_config_router_model(cfg)) {
        ref = ar_config_router_model(cfg);
        from = "the config's archrouter.router.model";
        if (!is_file(ref) && ref[0] != '/') { /* relative to the config file */
            char *dup = strdup(config_path);
            if (dup) {
                snprintf(path, cap, "%s/%s", dirname(dup), ref);
                free(dup);
                if (is_file(path)) return AR_EXIT_OK;
            }
        }
    }
    if (!ref && getenv("ARCHROUTER_MODEL") && *getenv("ARCHROUTER_MODEL")) {
        ref = getenv("ARCHROUTER_MODEL");
        from = "$ARCHROUTER_MODEL";
    }
    if (!ref) from = "the default";
    char err[1024];
    ar_pull_params pp = ar_pull_default_params();
    ar_status st = ar_model_resolve(ref, &pp, path, cap, err, sizeof err);
    if (st != AR_OK)
        return ar_cli_fail("no router model: %s (model from %s). Download it with 'archrouter "
                           "pull', or pass a GGUF file with -m or ARCHROUTER_MODEL",
                           err, from);
    return AR_EXIT_OK;
}

double ar_cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double ar_cli_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int ar_cli_argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}
