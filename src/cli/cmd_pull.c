/*
 * cmd_pull.c - `archrouter pull [REPO[@REV][:FILE]]`: download a model from the Hugging Face
 * hub into the local cache and print its path.
 *
 * The download, resume, verification and cache lookups are the library's (ar_pull()); this
 * file parses options, draws the progress bar from ar_pull's callback (on stderr, only when
 * it is a terminal, at most 10 times a second), turns Ctrl-C into a clean stop that keeps
 * the partial file, and prints the path (or a JSON object) on stdout.
 */
#include "cli.h"

#include "archrouter.h"

#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int usage(FILE *f) {
    fputs("Usage: archrouter pull [OPTIONS] [REPO[@REVISION][:FILE]]\n\n"
          "Download a model file from the Hugging Face hub into the local cache (unless it is\n"
          "already there) and print its path on stdout, so that scripts can write\n"
          "  m=$(archrouter pull)\n"
          "The default is " AR_PULL_DEFAULT_REPO ":" AR_PULL_DEFAULT_FILE ";\n"
          "a REPO without :FILE means its file " AR_PULL_DEFAULT_FILE ".\n"
          "REVISION is a branch, tag or commit (default main).\n\n"
          "Options:\n"
          "  --cache-dir DIR        cache folder (overrides ARCHROUTER_CACHE)\n"
          "  --force                download again even if the file is cached\n"
          "  --no-hf-cache          do not use a file found in the huggingface_hub cache\n"
          "  --json                 print one JSON object: path, sha256, size, downloaded,\n"
          "                         from_hf_cache, bytes_received, resumed_from\n"
          "  -q, --quiet            no progress bar and no messages, only errors\n"
          "  --connect-timeout SEC  give up connecting after SEC seconds (default 30)\n"
          "  --stall-timeout SEC    give up when slower than 1 KB/s for SEC seconds\n"
          "                         (default 60)\n"
          "  -h, --help             show this help\n\n"
          "Cache: CACHE/models/OWNER--NAME/FILE (OWNER--NAME@REVISION for a revision other\n"
          "than main), with FILE.sha256 holding its verified sha256. CACHE is --cache-dir,\n"
          "else $ARCHROUTER_CACHE, else $XDG_CACHE_HOME/archrouter, else\n"
          "~/.cache/archrouter. A file already in the huggingface_hub cache\n"
          "($HF_HUB_CACHE, else $HF_HOME/hub, default ~/.cache/huggingface/hub) is used\n"
          "where it is instead of being downloaded again.\n\n"
          "Downloads go to FILE.part and resume where they stopped (Ctrl-C, a broken\n"
          "connection) when the command is run again. The file is checked against the sha256\n"
          "the hub publishes; a mismatch deletes the partial file.\n\n"
          "Environment:\n"
          "  HF_ENDPOINT       hub address (default " AR_PULL_DEFAULT_ENDPOINT "), e.g. a mirror\n"
          "  HF_TOKEN          access token for gated or private models (sent to HF_ENDPOINT\n"
          "                    only, never printed)\n"
          "  HF_HOME, HF_HUB_CACHE, XDG_CACHE_HOME, ARCHROUTER_CACHE  cache folders, as above\n\n"
          "Offline: copy the .gguf file to the machine and pass its path with -m (or set\n"
          "ARCHROUTER_MODEL), or put it at the cache path above.\n\n"
          "Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted (Ctrl-C).\n",
          f);
    return f == stdout ? ar_cli_finish_output(AR_EXIT_OK) : AR_EXIT_USAGE;
}

/* Set by SIGINT; the progress callback turns it into a clean stop. A signal handler can only
 * reach file-scope state. */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct bar {
    bool draw;       /* stderr is a terminal and not --quiet */
    bool drawn;      /* a bar line is on screen */
    double start;    /* seconds, monotonic */
    double last;     /* when the bar was last drawn */
    uint64_t first;  /* bytes on disk when this run's transfer started */
    bool have_first; /* first is set */
} bar;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "123.4 MB" */
static void human(double bytes, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (bytes >= 1000.0 && u < 4) bytes /= 1000.0, u++;
    snprintf(buf, cap, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
}

static int on_progress(void *user, const ar_pull_progress *p) {
    bar *b = user;
    if (interrupted) return 1;
    if (!b->draw) return 0;
    double t = now_s();
    if (p->phase == AR_PULL_DOWNLOADING && !b->have_first) {
        b->first = p->done;
        b->have_first = true;
        b->start = t;
    }
    bool done = p->total && p->done >= p->total;
    if (t - b->last < 0.1 && !done) return 0;
    b->last = t;
    char have[32], total[32], rate[32] = "", eta[32] = "";
    human((double)p->done, have, sizeof have);
    human((double)p->total, total, sizeof total);
    if (p->phase == AR_PULL_CHECKING) {
        fprintf(stderr, "\r\033[Kchecking partial download: %s", have);
    } else {
        double el = t - b->start;
        double speed = el > 0.2 ? (double)(p->done - b->first) / el : 0.0;
        if (speed > 0) {
            human(speed, rate, sizeof rate);
            strcat(rate, "/s");
        }
        if (speed > 0 && p->total > p->done) {
            long s = (long)((double)(p->total - p->done) / speed);
            snprintf(eta, sizeof eta, "ETA %ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
        }
        if (p->total) {
            double frac = (double)p->done / (double)p->total;
            char cells[31];
            int full = (int)(frac * 30.0);
            for (int i = 0; i < 30; i++) cells[i] = i < full ? '#' : '.';
            cells[30] = 0;
            fprintf(stderr, "\r\033[K[%s] %5.1f%%  %s / %s  %s  %s", cells, 100.0 * frac, have,
                    total, rate, eta);
        } else {
            fprintf(stderr, "\r\033[K%s  %s", have, rate);
        }
    }
    fflush(stderr);
    b->drawn = true;
    return 0;
}

static json_t *result_json(const ar_pull_result *r) {
    json_t *o = json_object();
    json_object_set_new(o, "path", json_string(r->path));
    json_object_set_new(o, "sha256", r->sha256[0] ? json_string(r->sha256) : json_null());
    json_object_set_new(o, "size", json_integer((json_int_t)r->size));
    json_object_set_new(o, "downloaded", json_boolean(r->downloaded));
    json_object_set_new(o, "from_hf_cache", json_boolean(r->from_hf_cache));
    json_object_set_new(o, "bytes_received", json_integer((json_int_t)r->bytes_received));
    json_object_set_new(o, "resumed_from", json_integer((json_int_t)r->resumed_from));
    return o;
}

static bool parse_seconds(const char *s, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < 1 || v > 86400) return false;
    *out = v;
    return true;
}

int ar_cmd_pull(int argc, char **argv) {
    ar_pull_params pp = ar_pull_default_params();
    const char *ref = NULL;
    bool json = false, quiet = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (ar_cli_is_help(a)) return usage(stdout);
        bool has_value = i + 1 < argc;
        if (strcmp(a, "--cache-dir") == 0 || strcmp(a, "--connect-timeout") == 0 ||
            strcmp(a, "--stall-timeout") == 0) {
            if (!has_value) return ar_cli_usage_error("pull", "%s needs a value", a);
            const char *v = argv[++i];
            if (a[2] == 'c' && a[3] == 'a') {
                pp.cache_dir = v;
            } else if (!parse_seconds(v,
                                      a[2] == 'c' ? &pp.connect_timeout_s : &pp.low_speed_time_s)) {
                return ar_cli_usage_error("pull", "%s: '%s' is not a number of seconds (1..86400)",
                                          a, v);
            }
        } else if (strcmp(a, "--force") == 0) {
            pp.force = true;
        } else if (strcmp(a, "--no-hf-cache") == 0) {
            pp.use_hf_cache = false;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (a[0] == '-' && a[1]) {
            return ar_cli_usage_error("pull", "unknown option '%s'", a);
        } else if (ref) {
            return ar_cli_usage_error("pull", "more than one model given ('%s' and '%s')", ref, a);
        } else {
            ref = a;
        }
    }

    bar b = {.draw = !quiet && isatty(STDERR_FILENO), .start = now_s()};
    pp.progress = on_progress;
    pp.user = &b;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old);

    ar_pull_result res;
    char err[1024];
    double t0 = now_s();
    ar_status st = ar_pull(ref, &pp, &res, err, sizeof err);
    double secs = now_s() - t0;
    sigaction(SIGINT, &old, NULL);
    if (b.drawn) fputs("\r\033[K", stderr);

    if (st == AR_ERR_CANCELLED) {
        fprintf(stderr, "archrouter: interrupted; run the same command again to resume\n");
        return 130;
    }
    if (st == AR_ERR_INVALID_ARG) return ar_cli_usage_error("pull", "%s", err);
    if (st != AR_OK) return ar_cli_fail("%s", err);
    if (!quiet) {
        char size[32], rate[32];
        human((double)res.size, size, sizeof size);
        if (res.downloaded) {
            human(secs > 0 ? (double)res.bytes_received / secs : 0.0, rate, sizeof rate);
            fprintf(stderr, "archrouter: downloaded %s (%s%s, %.1f s, %s/s)%s\n", res.path, size,
                    res.resumed_from ? ", resumed" : "", secs, rate,
                    res.sha256[0] ? ", sha256 verified" : "");
        } else {
            fprintf(stderr, "archrouter: already downloaded%s: %s (%s)\n",
                    res.from_hf_cache ? " (huggingface_hub cache)" : "", res.path, size);
        }
    }
    if (json) {
        json_t *o = result_json(&res);
        char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
        json_decref(o);
        if (!s) return ar_cli_fail("out of memory");
        puts(s);
        free(s);
    } else {
        puts(res.path);
    }
    return ar_cli_finish_output(AR_EXIT_OK);
}
