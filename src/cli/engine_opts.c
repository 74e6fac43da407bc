/*
 * engine_opts.c - what the commands that run the model share: the engine options
 * (--threads, --precision, --cpu, --ctx, --batch, --kv, --weights) and opening a model with its
 * engine and tokenizer.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char ar_cli_engine_help[] =
    "Engine options:\n"
    "  --threads N        threads (default: physical cores)\n"
    "  --precision P      accurate (default: 8-bit activations plus their rounding\n"
    "                     error), fast (one 8-bit rounding, as llama.cpp), float32\n"
    "  --cpu T            kernels: auto (default), scalar, avx2, avx512\n"
    "  --ctx N            context positions of the sequence (default 4096)\n"
    "  --batch N          tokens per forward chunk (default 256)\n"
    "  --kv T             KV cache storage: f32 (default) or f16\n"
    "  --weights W        copy (default: weight matrices copied into 2 MB pages,\n"
    "                     faster; the file's pages are given back) or mapped (used\n"
    "                     in place from the file mapping)\n";

void ar_cli_engine_opts_init(ar_cli_engine_opts *o) {
    o->ep = ar_engine_default_params();
    o->sp = ar_seq_default_params();
    o->precision_given = false;
}

static bool parse_int(const char *s, long lo, long hi, int32_t *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) return false;
    *out = (int32_t)v;
    return true;
}

static int pick(const char *v, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) return i;
    return -1;
}

int ar_cli_engine_option(const char *cmd, int argc, char **argv, int *i, ar_cli_engine_opts *o) {
    static const char *const opts[] = {"--threads", "--precision", "--cpu",    "--ctx",
                                       "--batch",   "--kv",        "--weights"};
    const char *a = argv[*i];
    int which = pick(a, opts, 7);
    if (which < 0) return 0;
    if (*i + 1 >= argc) {
        ar_cli_usage_error(cmd, "%s needs a value", a);
        return -1;
    }
    const char *v = argv[++*i];
    static const char *const precisions[] = {"accurate", "fast", "float32"};
    static const char *const cpus[] = {"scalar", "avx2", "avx512"};
    static const char *const kvs[] = {"f32", "f16"};
    static const char *const weights[] = {"copy", "mapped"};
    bool ok = true;
    int k;
    switch (which) {
    case 0: ok = parse_int(v, 1, 256, &o->ep.n_threads); break;
    case 1:
        ok = (k = pick(v, precisions, 3)) >= 0;
        if (ok) o->ep.precision = (ar_precision)k;
        o->precision_given = ok;
        break;
    case 2:
        ok = strcmp(v, "auto") == 0 || (k = pick(v, cpus, 3)) >= 0;
        o->ep.cpu = strcmp(v, "auto") == 0 ? -1 : ok ? k : -1;
        break;
    case 3: ok = parse_int(v, 1, 1 << 22, &o->sp.n_ctx); break;
    case 4: ok = parse_int(v, 1, 1 << 16, &o->sp.n_batch); break;
    case 5:
        ok = (k = pick(v, kvs, 2)) >= 0;
        if (ok) o->sp.kv_type = (ar_kv_type)k;
        break;
    case 6:
        ok = (k = pick(v, weights, 2)) >= 0;
        if (ok) o->ep.in_place = k == 1;
        break;
    }
    if (!ok) {
        ar_cli_usage_error(cmd, "invalid value '%s' for %s", v, a);
        return -1;
    }
    return 1;
}

int ar_cli_open_model(const char *path, const ar_cli_engine_opts *o, bool tokenizer,
                      ar_cli_model *out) {
    memset(out, 0, sizeof *out);
    double t0 = ar_cli_now_ms();
    ar_status st = ar_model_open(path, NULL, &out->model);
    if (st != AR_OK) return ar_cli_fail("%s (%s)", ar_model_errmsg(out->model), ar_strerror(st));
    st = ar_engine_new(out->model, &o->ep, &out->engine);
    if (st != AR_OK) return ar_cli_fail("%s (%s)", ar_engine_errmsg(out->engine), ar_strerror(st));
    if (tokenizer) {
        st = ar_tokenizer_from_model(out->model, NULL, &out->tok);
        if (st != AR_OK)
            return ar_cli_fail("the model's tokenizer: %s (%s)", ar_tokenizer_errmsg(out->tok),
                               ar_strerror(st));
    }
    out->load_ms = ar_cli_now_ms() - t0;
    return AR_EXIT_OK;
}

void ar_cli_close_model(ar_cli_model *m) {
    ar_tokenizer_free(m->tok);
    ar_engine_free(m->engine);
    ar_model_free(m->model);
    memset(m, 0, sizeof *m);
}
