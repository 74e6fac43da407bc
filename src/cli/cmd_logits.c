/*
 * cmd_logits.c - `archrouter logits MODEL --ids 1,2,3`: the model's logits for given token
 * ids, to compare with a reference by hand. For every position: the log-sum-exp and the
 * K largest logits; --json prints them with full float precision.
 */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f) {
    fprintf(f,
            "Usage: archrouter logits [--top K] [--json] [ENGINE OPTIONS] MODEL --ids I,J,...\n"
            "       archrouter logits [--top K] [--json] [ENGINE OPTIONS] MODEL --text TEXT\n\n"
            "Evaluate the tokens and print, for every position, the log-sum-exp of the logits\n"
            "and the K largest logits (default 10). --text tokenizes TEXT with added tokens\n"
            "parsed. --json prints {\"n_vocab\": V, \"positions\": [{\"pos\": 0, \"lse\": x,\n"
            "\"top\": [{\"id\": i, \"logit\": x}, ...]}, ...]} with full float precision.\n\n%s",
            ar_cli_engine_help);
    return f == stdout ? ar_cli_finish_output(AR_EXIT_OK) : AR_EXIT_USAGE;
}

/* "1,2,3" -> ids; false on anything else. */
static bool parse_ids(const char *s, int32_t **ids, size_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *ids = malloc(cap * sizeof **ids);
    *n = 0;
    if (!*ids) return false;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < INT32_MIN || v > INT32_MAX || (*end && *end != ',')) return false;
        (*ids)[(*n)++] = (int32_t)v;
        s = *end ? end + 1 : end;
    }
    return *n > 0;
}

static double lse_of(const float *x, int n) {
    double m = -INFINITY, s = 0;
    for (int i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    for (int i = 0; i < n; i++) s += exp((double)x[i] - m);
    return m + log(s);
}

/* The k largest entries of x, by insertion into a small sorted list. */
static void top_k(const float *x, int n, int k, int *ids) {
    int have = 0;
    for (int i = 0; i < n; i++) {
        if (have == k && x[i] <= x[ids[k - 1]]) continue;
        int j = have < k ? have++ : k - 1;
        while (j > 0 && x[ids[j - 1]] < x[i]) {
            ids[j] = ids[j - 1];
            j--;
        }
        ids[j] = i;
    }
}

static int print(const float *logits, size_t n, int nv, int k, bool json) {
    int *top = malloc((size_t)k * sizeof *top);
    if (!top) return ar_cli_fail("out of memory");
    json_t *arr = json ? json_array() : NULL;
    for (size_t t = 0; t < n; t++) {
        const float *l = logits + t * (size_t)nv;
        double lse = lse_of(l, nv);
        top_k(l, nv, k, top);
        if (json) {
            json_t *p = json_object(), *ta = json_array();
            json_object_set_new(p, "pos", json_integer((json_int_t)t));
            json_object_set_new(p, "lse", json_real(lse));
            for (int i = 0; i < k; i++)
                json_array_append_new(
                    ta, json_pack("{s:i,s:f}", "id", top[i], "logit", (double)l[top[i]]));
            json_object_set_new(p, "top", ta);
            json_array_append_new(arr, p);
        } else {
            printf("pos %zu  lse %.6f  top:", t, lse);
            for (int i = 0; i < k; i++) printf(" %d=%.4f", top[i], (double)l[top[i]]);
            printf("\n");
        }
    }
    if (json) {
        json_t *o = json_pack("{s:i,s:o}", "n_vocab", nv, "positions", arr);
        char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9));
        if (s) printf("%s\n", s);
        free(s);
        json_decref(o);
    }
    free(top);
    return AR_EXIT_OK;
}

int ar_cmd_logits(int argc, char **argv) {
    ar_cli_engine_opts o;
    ar_cli_engine_opts_init(&o);
    const char *model = NULL, *ids_arg = NULL, *text = NULL;
    int k = 10;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = ar_cli_engine_option("logits", argc, argv, &i, &o);
        if (r < 0) return AR_EXIT_USAGE;
        if (r > 0) continue;
        if (ar_cli_is_help(a)) return usage(stdout);
        if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--ids") == 0 && i + 1 < argc)
            ids_arg = argv[++i];
        else if (strcmp(a, "--text") == 0 && i + 1 < argc)
            text = argv[++i];
        else if (strcmp(a, "--top") == 0 && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 1 || v > 1000)
                return ar_cli_usage_error("logits", "--top wants a number from 1 to 1000");
            k = (int)v;
        } else if (a[0] == '-' && a[1])
            return ar_cli_usage_error("logits", "unknown or incomplete option '%s'", a);
        else if (!model)
            model = a;
        else
            return ar_cli_usage_error("logits", "unexpected argument '%s'", a);
    }
    if (!model) return ar_cli_usage_error("logits", "no model given");
    if (!ids_arg == !text) return ar_cli_usage_error("logits", "give either --ids or --text");
    int32_t *ids = NULL;
    size_t n = 0;
    if (ids_arg && !parse_ids(ids_arg, &ids, &n)) {
        free(ids);
        return ar_cli_usage_error("logits", "--ids wants comma-separated token ids");
    }
    ar_cli_model m;
    int rc = ar_cli_open_model(model, &o, text != NULL, &m);
    if (rc == AR_EXIT_OK && text) {
        size_t cap = strlen(text) + 8;
        ids = malloc(cap * sizeof *ids);
        if (!ids ||
            ar_tokenize(m.tok, text, strlen(text), AR_TOKENIZE_SPECIAL, ids, cap, &n) != AR_OK ||
            n == 0)
            rc = ar_cli_fail("cannot tokenize --text");
    }
    int nv = rc == AR_EXIT_OK ? ar_engine_n_vocab(m.engine) : 0;
    if (k > nv) k = nv;
    float *logits = rc == AR_EXIT_OK ? malloc(n * (size_t)nv * sizeof *logits) : NULL;
    ar_seq *seq = NULL;
    if (rc == AR_EXIT_OK && !logits) rc = ar_cli_fail("out of memory for %zu x %d logits", n, nv);
    if (rc == AR_EXIT_OK) {
        ar_seq_params sp = o.sp;
        if (sp.n_ctx < (int32_t)n) sp.n_ctx = (int32_t)n;
        if (ar_seq_new(m.engine, &sp, &seq) != AR_OK ||
            ar_seq_eval(seq, ids, (int32_t)n, AR_LOGITS_ALL, logits) != AR_OK)
            rc = ar_cli_fail("%s", ar_seq_errmsg(seq));
    }
    if (rc == AR_EXIT_OK) rc = print(logits, n, nv, k, json);
    ar_seq_free(seq);
    free(logits);
    free(ids);
    ar_cli_close_model(&m);
    return ar_cli_finish_output(rc);
}
