/*
 * cmd_bench.c - `archrouter bench`: speed measurements printed as medians of repeated runs.
 *
 * MODEL: prefill speed at 64, 256 and 512 tokens, decode speed (one token at a time after a
 * 64-token prompt) with the weight bytes read per second, peak resident memory, and a hash
 * of the last logits of the 64-token prefill so that runs on different kernels, thread
 * counts or machines can be compared (equal hash = bit-identical logits). Token ids are a
 * fixed pseudo-random sequence.
 *
 * --route CONFIG --conversation FILE: also the standard routing request (bench_route.c):
 * whole decisions through the router API with the prefix cache cold and warm.
 *
 * --tokenizer MODEL --corpus FILE: tokenizer load time, and single-thread encoding speed
 * over a corpus (a JSON-lines file with "text" fields, such as the tokenizer golden file,
 * or a plain text file, one text per line), cold (no word cache: every word goes through
 * BPE) and warm (the cache filled by a first pass), with the peak resident memory.
 */
#include "bench_route.h"
#include "cli.h"

#include "archrouter.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static int usage(FILE *f) {
    fprintf(f,
            "Usage: archrouter bench [--runs N] [--decode N] [--json] [ENGINE OPTIONS] MODEL\n"
            "       archrouter bench --tokenizer --corpus FILE [--runs N] [--special] [--json]\n"
            "                        MODEL\n\n"
            "Measure speed on this machine; every figure is the median of N runs.\n\n"
            "The model: prefill tokens/s at 64, 256 and 512 tokens, decode tokens/s (and weight\n"
            "GB/s) after a 64-token prompt, peak RSS, and a hash of the logits (equal hashes:\n"
            "bit-identical results). --json keys: prefill_tok_s {\"64\", \"256\", \"512\"},\n"
            "decode_tok_s, peak_rss_mib, logits_hash, and more.\n"
            "  --decode N     tokens per decode run (default 32)\n"
            "  --route CONFIG --conversation FILE\n"
            "                 also time routing decisions (routes from CONFIG, an OpenAI\n"
            "                 messages array in FILE; bench/route-config.yaml and\n"
            "                 bench/route-conversation.json are the standard request):\n"
            "                 cold (empty prefix cache), warm (cached prompt head), with\n"
            "                 --scores' extra pass, and generic decoding of 8 tokens for\n"
            "                 comparison; --json adds route_ms {\"cold\", \"warm\"} and more\n\n"
            "The tokenizer:\n"
            "  --tokenizer    tokenizer load time and encoding MB/s (single thread), cold\n"
            "                 (no word cache) and warm (cache filled by a first pass)\n"
            "  --corpus FILE  texts to encode: JSON lines with a \"text\" field, or plain\n"
            "                 text with one text per line\n"
            "  --special      parse added tokens such as <|im_start|> (default: off, as for\n"
            "                 user text)\n\n"
            "  --runs N       repetitions (default 5 for the tokenizer, 3 for the model)\n"
            "  --json         print one JSON object\n"
            "  -h, --help     show this help\n\n"
            "MODEL is a GGUF file or a checkpoint directory (for --tokenizer also a\n"
            "tokenizer.json).\n\n%s",
            ar_cli_engine_help);
    return f == stdout ? ar_cli_finish_output(AR_EXIT_OK) : AR_EXIT_USAGE;
}

typedef struct corpus {
    size_t n, cap;
    char **text;
    size_t *len;
    size_t bytes;
} corpus;

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* kilobytes on Linux */
}

static bool corpus_add(corpus *c, const char *s, size_t len) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        char **t = realloc(c->text, cap * sizeof *t);
        if (t) c->text = t;
        size_t *l = realloc(c->len, cap * sizeof *l);
        if (l) c->len = l;
        if (!t || !l) return false;
        c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return false;
    memcpy(copy, s, len);
    copy[len] = 0;
    c->text[c->n] = copy;
    c->len[c->n++] = len;
    c->bytes += len;
    return true;
}

static void corpus_free(corpus *c) {
    for (size_t i = 0; i < c->n; i++) free(c->text[i]);
    free(c->text);
    free(c->len);
}

/* JSON lines with "text" (the first line decides), else one text per line. */
static int corpus_load(corpus *c, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return ar_cli_fail("%s: cannot open the corpus", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int json = -1, rc = AR_EXIT_OK;
    long lineno = 0;
    while (rc == AR_EXIT_OK && (len = getline(&line, &cap, f)) > 0) {
        lineno++;
        json_t *o = json == 0 ? NULL : json_loadb(line, (size_t)len, JSON_ALLOW_NUL, NULL);
        json_t *text = json_object_get(o, "text");
        if (json < 0) json = json_is_string(text);
        if (json && !json_is_string(text))
            rc = ar_cli_fail("%s:%ld: expected a JSON object with a string \"text\"", path, lineno);
        else if (json ? !corpus_add(c, json_string_value(text), json_string_length(text))
                      : !corpus_add(c, line, (size_t)len))
            rc = ar_cli_fail("out of memory reading the corpus");
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (rc == AR_EXIT_OK && c->n == 0) rc = ar_cli_fail("%s: the corpus is empty", path);
    return rc;
}

typedef struct tok_result {
    double load_ms, cold_mbs, warm_mbs, cold_tps, warm_tps;
    size_t tokens;
    int32_t n_tokens;
} tok_result;

/* One pass over the corpus; returns seconds, or -1 on a tokenizer error. */
static double encode_pass(const ar_tokenizer *tok, const corpus *c, uint32_t flags, int32_t *ids,
                          size_t cap, size_t *tokens) {
    *tokens = 0;
    double t0 = ar_cli_now_ms();
    for (size_t i = 0; i < c->n; i++) {
        size_t n;
        ar_status st = ar_tokenize(tok, c->text[i], c->len[i], flags | AR_TOKENIZE_REPLACE_INVALID,
                                   ids, cap, &n);
        if (st != AR_OK) return -1;
        *tokens += n;
    }
    return (ar_cli_now_ms() - t0) / 1e3;
}

static int bench_tokenizer(const char *model, const corpus *c, int runs, uint32_t flags,
                           tok_result *r) {
    double *t = calloc((size_t)runs, sizeof *t);
    size_t cap = 0;
    for (size_t i = 0; i < c->n; i++)
        if (3 * c->len[i] + 16 > cap) cap = 3 * c->len[i] + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!t || !ids) {
        free(t);
        free(ids);
        return ar_cli_fail("out of memory");
    }
    int rc = AR_EXIT_OK;
    ar_tokenizer *cold = NULL, *warm = NULL;
    for (int i = 0; i < runs && rc == AR_EXIT_OK; i++) {
        ar_tokenizer_params p = ar_tokenizer_default_params();
        p.cache_bytes = 0;
        ar_tokenizer_free(cold);
        double t0 = ar_cli_now_ms();
        ar_status st = ar_tokenizer_open(model, &p, &cold);
        t[i] = ar_cli_now_ms() - t0;
        if (st != AR_OK) rc = ar_cli_fail("%s (%s)", ar_tokenizer_errmsg(cold), ar_strerror(st));
    }
    if (rc == AR_EXIT_OK) {
        r->load_ms = ar_cli_median(t, runs);
        r->n_tokens = ar_tokenizer_n_tokens(cold);
        if (ar_tokenizer_open(model, NULL, &warm) != AR_OK) rc = ar_cli_fail("reopening failed");
    }
    for (int pass = 0; pass < 2 && rc == AR_EXIT_OK; pass++) {
        const ar_tokenizer *tok = pass == 0 ? cold : warm;
        if (pass == 1) encode_pass(tok, c, flags, ids, cap, &r->tokens); /* fill the cache */
        for (int i = 0; i < runs && rc == AR_EXIT_OK; i++) {
            t[i] = encode_pass(tok, c, flags, ids, cap, &r->tokens);
            if (t[i] < 0) rc = ar_cli_fail("tokenizing the corpus failed");
        }
        if (rc != AR_EXIT_OK) break;
        double s = ar_cli_median(t, runs);
        *(pass == 0 ? &r->cold_mbs : &r->warm_mbs) = (double)c->bytes / s / 1e6;
        *(pass == 0 ? &r->cold_tps : &r->warm_tps) = (double)r->tokens / s;
    }
    ar_tokenizer_free(cold);
    ar_tokenizer_free(warm);
    free(t);
    free(ids);
    return rc;
}

static void print_result(const char *model, const char *corpus_path, const corpus *c,
                         const tok_result *r, int runs, bool json) {
    if (json) {
        json_t *o = json_object(), *tk = json_object();
        json_object_set_new(tk, "model", json_string(model));
        json_object_set_new(tk, "n_tokens", json_integer(r->n_tokens));
        json_object_set_new(tk, "corpus", json_string(corpus_path));
        json_object_set_new(tk, "texts", json_integer((json_int_t)c->n));
        json_object_set_new(tk, "bytes", json_integer((json_int_t)c->bytes));
        json_object_set_new(tk, "tokens", json_integer((json_int_t)r->tokens));
        json_object_set_new(tk, "runs", json_integer(runs));
        json_object_set_new(tk, "load_ms", json_real(r->load_ms));
        json_object_set_new(tk, "mb_per_s_cold", json_real(r->cold_mbs));
        json_object_set_new(tk, "mb_per_s_warm", json_real(r->warm_mbs));
        json_object_set_new(tk, "tokens_per_s_cold", json_real(r->cold_tps));
        json_object_set_new(tk, "tokens_per_s_warm", json_real(r->warm_tps));
        json_object_set_new(o, "tokenizer", tk);
        json_object_set_new(o, "peak_rss_mb", json_real(peak_rss_mb()));
        char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        if (s) printf("%s\n", s);
        free(s);
        json_decref(o);
        return;
    }
    printf("tokenizer  %s (%d token ids)\n", model, r->n_tokens);
    printf("corpus     %s: %zu texts, %zu bytes, %zu tokens\n", corpus_path, c->n, c->bytes,
           r->tokens);
    printf("load       %.1f ms\n", r->load_ms);
    printf("encode     cold %.1f MB/s (%.2f M tokens/s), warm %.1f MB/s (%.2f M tokens/s)\n",
           r->cold_mbs, r->cold_tps / 1e6, r->warm_mbs, r->warm_tps / 1e6);
    printf("           single thread, median of %d runs\n", runs);
    printf("peak RSS   %.1f MB\n", peak_rss_mb());
}

/* ---- the model --------------------------------------------------------------------------- */

static const int prefill_sizes[] = {64, 256, 512};
#define N_SIZES       3
#define DECODE_PROMPT 64

typedef struct model_result {
    double prefill_ms[N_SIZES];
    double decode_ms; /* per token */
    uint64_t hash;
} model_result;

static uint64_t hash_floats(const float *x, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *p = (const unsigned char *)x;
    for (size_t i = 0; i < n * sizeof *x; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int bench_model(ar_cli_model *m, const ar_cli_engine_opts *o, int runs, int n_decode,
                       model_result *r) {
    int nv = ar_engine_n_vocab(m->engine);
    int max = prefill_sizes[N_SIZES - 1];
    int32_t *ids = malloc((size_t)(max + n_decode) * sizeof *ids);
    float *logits = malloc((size_t)nv * sizeof *logits);
    double *t = calloc((size_t)runs, sizeof *t);
    ar_seq *seq = NULL;
    ar_seq_params sp = o->sp;
    sp.n_ctx = max + n_decode;
    int rc = AR_EXIT_OK;
    if (!ids || !logits || !t)
        rc = ar_cli_fail("out of memory");
    else if (ar_seq_new(m->engine, &sp, &seq) != AR_OK)
        rc = ar_cli_fail("%s", ar_seq_errmsg(seq));
    uint64_t state = 0x853c49e6748fea9bull;
    for (int i = 0; rc == AR_EXIT_OK && i < max + n_decode; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        ids[i] = (int32_t)((state >> 33) % (uint64_t)nv);
    }
    for (int s = 0; rc == AR_EXIT_OK && s < N_SIZES; s++) {
        for (int i = 0; i < runs && rc == AR_EXIT_OK; i++) {
            ar_seq_truncate(seq, 0);
            double t0 = ar_cli_now_ms();
            if (ar_seq_eval(seq, ids, prefill_sizes[s], AR_LOGITS_LAST, logits) != AR_OK)
                rc = ar_cli_fail("%s", ar_seq_errmsg(seq));
            t[i] = ar_cli_now_ms() - t0;
            if (s == 0 && i == 0) r->hash = hash_floats(logits, (size_t)nv);
        }
        if (rc == AR_EXIT_OK) r->prefill_ms[s] = ar_cli_median(t, runs);
    }
    for (int i = 0; i < runs && rc == AR_EXIT_OK && n_decode > 0; i++) {
        ar_seq_truncate(seq, 0);
        if (ar_seq_eval(seq, ids, DECODE_PROMPT, AR_LOGITS_LAST, logits) != AR_OK) {
            rc = ar_cli_fail("%s", ar_seq_errmsg(seq));
            break;
        }
        double t0 = ar_cli_now_ms();
        for (int j = 0; j < n_decode && rc == AR_EXIT_OK; j++)
            if (ar_seq_eval(seq, ids + DECODE_PROMPT + j, 1, AR_LOGITS_LAST, logits) != AR_OK)
                rc = ar_cli_fail("%s", ar_seq_errmsg(seq));
        t[i] = (ar_cli_now_ms() - t0) / n_decode;
    }
    if (rc == AR_EXIT_OK && n_decode > 0) r->decode_ms = ar_cli_median(t, runs);
    ar_seq_free(seq);
    free(ids);
    free(logits);
    free(t);
    return rc;
}

static const char *precision_name(ar_precision p) {
    return p == AR_PRECISION_FAST ? "fast" : p == AR_PRECISION_FLOAT32 ? "float32" : "accurate";
}

static void print_model(const char *path, const ar_cli_model *m, const ar_cli_engine_opts *o,
                        const model_result *r, int runs, int n_decode, bool json,
                        const route_bench *rb) {
    ar_model_info in;
    ar_model_get_info(m->model, &in);
    double decode_tps = r->decode_ms > 0 ? 1e3 / r->decode_ms : 0;
    double gbs = decode_tps * (double)in.n_weight_bytes / 1e9;
    char hash[32];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)r->hash);
    if (json) {
        json_t *pf = json_object(), *pm = json_object();
        for (int s = 0; s < N_SIZES; s++) {
            char k[16];
            snprintf(k, sizeof k, "%d", prefill_sizes[s]);
            json_object_set_new(pf, k, json_real(prefill_sizes[s] * 1e3 / r->prefill_ms[s]));
            json_object_set_new(pm, k, json_real(r->prefill_ms[s]));
        }
        json_t *o_ = json_pack(
            "{s:s,s:s,s:I,s:i,s:s,s:s,s:i,s:o,s:o,s:f,s:f,s:f,s:i,s:f,s:s,s:f}", "model", path,
            "file_type", in.file_type, "n_params", (json_int_t)in.n_params, "threads",
            ar_engine_n_threads(m->engine), "cpu", ar_engine_cpu_name(m->engine), "precision",
            precision_name(o->ep.precision), "runs", runs, "prefill_tok_s", pf, "prefill_ms", pm,
            "decode_tok_s", decode_tps, "decode_ms", r->decode_ms, "decode_weight_gb_s", gbs,
            "decode_tokens", n_decode, "peak_rss_mib", peak_rss_mb(), "logits_hash", hash,
            "load_ms", m->load_ms);
        if (o_ && rb)
            json_object_set_new(
                o_, "route",
                json_pack("{s:{s:f,s:f},s:f,s:f,s:i,s:i,s:i,s:i,s:s}", "route_ms", "cold",
                          rb->cold_ms, "warm", rb->warm_ms, "scores_warm_ms", rb->scores_ms,
                          "full_decode_8_ms", rb->full_ms, "prompt_tokens", rb->prompt_tokens,
                          "cached_tokens", rb->cached_tokens, "decode_steps", rb->decode_steps,
                          "routes", rb->n_routes, "answer", rb->answer));
        if (o_ && rb)
            json_object_set_new(o_, "route_ms",
                                json_pack("{s:f,s:f}", "cold", rb->cold_ms, "warm", rb->warm_ms));
        char *s = o_ ? json_dumps(o_, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))
                     : NULL;
        if (s) printf("%s\n", s);
        free(s);
        json_decref(o_);
        return;
    }
    double np = (double)in.n_params;
    printf("model      %s (%s, %.2f %s parameters, %.0f MB of weights)\n", path, in.file_type,
           np >= 1e9 ? np / 1e9 : np / 1e6, np >= 1e9 ? "B" : "M", (double)in.n_weight_bytes / 1e6);
    printf("engine     %d threads, %s kernels, %s precision; loaded in %.0f ms\n",
           ar_engine_n_threads(m->engine), ar_engine_cpu_name(m->engine),
           precision_name(o->ep.precision), m->load_ms);
    for (int s = 0; s < N_SIZES; s++)
        printf("prefill    %4d tokens: %8.1f ms  %8.1f tokens/s\n", prefill_sizes[s],
               r->prefill_ms[s], prefill_sizes[s] * 1e3 / r->prefill_ms[s]);
    printf("decode     %.1f ms/token  %.1f tokens/s  (%.1f GB/s of weights)\n", r->decode_ms,
           decode_tps, gbs);
    printf("peak RSS   %.0f MiB\n", peak_rss_mb());
    printf("logits     hash %s (64-token prefill)\n", hash);
    if (rb) {
        printf("route      %d routes, %d prompt tokens (%d cached when warm), answer '%s' after "
               "%d decode step%s\n",
               rb->n_routes, rb->prompt_tokens, rb->cached_tokens, rb->answer, rb->decode_steps,
               rb->decode_steps == 1 ? "" : "s");
        printf("           cold %.1f ms, warm %.1f ms, warm with scores %.1f ms; generic decoding "
               "(8 tokens) %.1f ms\n",
               rb->cold_ms, rb->warm_ms, rb->scores_ms, rb->full_ms);
    }
    printf("           medians of %d runs\n", runs);
}

int ar_cmd_bench(int argc, char **argv) {
    bool tokenizer = false, json = false, special = false;
    const char *model = NULL, *corpus_path = NULL, *route_cfg = NULL, *route_conv = NULL;
    int runs = 0, n_decode = 32;
    ar_cli_engine_opts o;
    ar_cli_engine_opts_init(&o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = ar_cli_engine_option("bench", argc, argv, &i, &o);
        if (r < 0) return AR_EXIT_USAGE;
        if (r > 0) continue;
        if (ar_cli_is_help(a))
            return usage(stdout);
        else if (strcmp(a, "--tokenizer") == 0)
            tokenizer = true;
        else if (strcmp(a, "--json") == 0)
            json = true;
        else if (strcmp(a, "--special") == 0)
            special = true;
        else if (strcmp(a, "--corpus") == 0 && i + 1 < argc)
            corpus_path = argv[++i];
        else if (strcmp(a, "--route") == 0 && i + 1 < argc)
            route_cfg = argv[++i];
        else if (strcmp(a, "--conversation") == 0 && i + 1 < argc)
            route_conv = argv[++i];
        else if ((strcmp(a, "--runs") == 0 || strcmp(a, "--decode") == 0) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < (a[2] == 'r') || v > 1000)
                return ar_cli_usage_error("bench", "%s wants a number up to 1000", a);
            *(a[2] == 'r' ? &runs : &n_decode) = (int)v;
        } else if (a[0] == '-')
            return ar_cli_usage_error("bench", "unknown or incomplete option '%s'", a);
        else if (!model)
            model = a;
        else
            return ar_cli_usage_error("bench", "unexpected argument '%s'", a);
    }
    if (!model) return ar_cli_usage_error("bench", "no model given");
    if (tokenizer) {
        if (!corpus_path) return ar_cli_usage_error("bench", "--tokenizer needs --corpus FILE");
        corpus c = {0};
        int rc = corpus_load(&c, corpus_path);
        tok_result r = {0};
        if (runs == 0) runs = 5;
        if (rc == AR_EXIT_OK)
            rc = bench_tokenizer(model, &c, runs, special ? AR_TOKENIZE_SPECIAL : 0, &r);
        if (rc == AR_EXIT_OK) print_result(model, corpus_path, &c, &r, runs, json);
        corpus_free(&c);
        return ar_cli_finish_output(rc);
    }
    if (corpus_path) return ar_cli_usage_error("bench", "--corpus goes with --tokenizer");
    if (!route_cfg != !route_conv)
        return ar_cli_usage_error("bench", "--route CONFIG and --conversation FILE go together");
    if (runs == 0) runs = 3;
    ar_cli_model m;
    model_result r = {0};
    route_bench rb = {0};
    int rc = ar_cli_open_model(model, &o, route_cfg != NULL, &m);
    if (rc == AR_EXIT_OK) rc = bench_model(&m, &o, runs, n_decode, &r);
    if (rc == AR_EXIT_OK && route_cfg)
        rc = ar_cli_bench_route(&m, &o, route_cfg, route_conv, runs, &rb);
    if (rc == AR_EXIT_OK)
        print_model(model, &m, &o, &r, runs, n_decode, json, route_cfg ? &rb : NULL);
    ar_cli_close_model(&m);
    return ar_cli_finish_output(rc);
}
