/*
 * cmd_generate.c - `archrouter generate MODEL PROMPT`: greedy continuation, for debugging
 * the engine. The prompt is tokenized with added tokens parsed (so a chat template can be
 * written by hand); the continuation is printed as it is produced, bytes held back until
 * they form whole UTF-8 characters. Timings go to standard error.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(FILE *f) {
    fprintf(f,
            "Usage: archrouter generate [-n N] [--no-special] [ENGINE OPTIONS] MODEL PROMPT\n\n"
            "Greedy (argmax) continuation of PROMPT, printed as it is generated; stops after\n"
            "N tokens (default 64) or at an end-of-text token. Prints the prompt length and\n"
            "the prefill and decode speeds (tokens/s) on standard error.\n\n"
            "  -n, --max-tokens N  tokens to generate (default 64)\n"
            "  --no-special        do not parse added tokens such as <|im_start|> in PROMPT\n"
            "  -h, --help          show this help\n\n%s",
            ar_cli_engine_help);
    return f == stdout ? ar_cli_finish_output(AR_EXIT_OK) : AR_EXIT_USAGE;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Length of the longest prefix of s that ends on a UTF-8 character boundary. */
static size_t complete_utf8(const char *s, size_t n) {
    size_t i = n;
    while (i > 0 && i > n - 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return n;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return n - (i - 1) >= need ? n : i - 1;
}

static bool is_stop(const ar_tokenizer *tok, int32_t id) {
    return id == ar_tokenizer_special(tok, AR_TOKEN_EOS) ||
           id == ar_tokenizer_find(tok, "<|im_end|>") ||
           id == ar_tokenizer_find(tok, "<|endoftext|>");
}

static int run(ar_cli_model *m, const ar_cli_engine_opts *o, const char *prompt, bool special,
               int max_tokens) {
    size_t len = strlen(prompt), n = 0, cap = len + 8;
    int32_t *ids = malloc(cap * sizeof *ids);
    int nv = ar_engine_n_vocab(m->engine);
    float *logits = malloc((size_t)nv * sizeof *logits);
    char *pending = malloc(64 * (size_t)(max_tokens + 1) + 1);
    ar_seq *seq = NULL;
    int rc = AR_EXIT_OK;
    if (!ids || !logits || !pending) {
        rc = ar_cli_fail("out of memory");
        goto done;
    }
    ar_status st =
        ar_tokenize(m->tok, prompt, len, special ? AR_TOKENIZE_SPECIAL : 0, ids, cap, &n);
    if (st != AR_OK || n == 0) {
        rc = ar_cli_fail("cannot tokenize the prompt (%s)", n == 0 ? "empty" : ar_strerror(st));
        goto done;
    }
    ar_seq_params sp = o->sp;
    if (sp.n_ctx < (int32_t)n + max_tokens) sp.n_ctx = (int32_t)n + max_tokens;
    st = ar_seq_new(m->engine, &sp, &seq);
    if (st != AR_OK) {
        rc = ar_cli_fail("%s", ar_seq_errmsg(seq));
        goto done;
    }
    double t0 = now_s();
    st = ar_seq_eval(seq, ids, (int32_t)n, AR_LOGITS_LAST, logits);
    double t1 = now_s();
    if (st != AR_OK) {
        rc = ar_cli_fail("%s", ar_seq_errmsg(seq));
        goto done;
    }
    size_t held = 0;
    int produced = 0;
    for (; produced < max_tokens; produced++) {
        int32_t next = ar_cli_argmax(logits, nv);
        if (is_stop(m->tok, next)) break;
        size_t plen;
        const char *piece = ar_token_bytes(m->tok, next, &plen);
        memcpy(pending + held, piece, plen);
        held += plen;
        size_t ready = complete_utf8(pending, held);
        fwrite(pending, 1, ready, stdout);
        fflush(stdout);
        memmove(pending, pending + ready, held - ready);
        held -= ready;
        if (produced + 1 < max_tokens &&
            ar_seq_eval(seq, &next, 1, AR_LOGITS_LAST, logits) != AR_OK) {
            rc = ar_cli_fail("%s", ar_seq_errmsg(seq));
            goto done;
        }
    }
    fwrite(pending, 1, held, stdout);
    printf("\n");
    double t2 = now_s();
    fprintf(stderr,
            "archrouter: %zu prompt tokens in %.1f ms (%.1f tokens/s), %d generated in %.1f ms "
            "(%.1f tokens/s); %d threads, %s kernels\n",
            n, (t1 - t0) * 1e3, (double)n / (t1 - t0), produced, (t2 - t1) * 1e3,
            produced > 0 ? (double)produced / (t2 - t1) : 0.0, ar_engine_n_threads(m->engine),
            ar_engine_cpu_name(m->engine));
done:
    ar_seq_free(seq);
    free(ids);
    free(logits);
    free(pending);
    return rc;
}

int ar_cmd_generate(int argc, char **argv) {
    ar_cli_engine_opts o;
    ar_cli_engine_opts_init(&o);
    const char *model = NULL, *prompt = NULL;
    int max_tokens = 64;
    bool special = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int r = ar_cli_engine_option("generate", argc, argv, &i, &o);
        if (r < 0) return AR_EXIT_USAGE;
        if (r > 0) continue;
        if (ar_cli_is_help(a)) return usage(stdout);
        if ((strcmp(a, "-n") == 0 || strcmp(a, "--max-tokens") == 0) && i + 1 < argc) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 0 || v > 1 << 20)
                return ar_cli_usage_error("generate", "invalid token count '%s'", argv[i]);
            max_tokens = (int)v;
        } else if (strcmp(a, "--no-special") == 0) {
            special = false;
        } else if (a[0] == '-' && a[1]) {
            return ar_cli_usage_error("generate", "unknown or incomplete option '%s'", a);
        } else if (!model) {
            model = a;
        } else if (!prompt) {
            prompt = a;
        } else {
            return ar_cli_usage_error("generate", "unexpected argument '%s'", a);
        }
    }
    if (!model || !prompt) return ar_cli_usage_error("generate", "need MODEL and PROMPT");
    ar_cli_model m;
    int rc = ar_cli_open_model(model, &o, true, &m);
    if (rc == AR_EXIT_OK) rc = run(&m, &o, prompt, special, max_tokens);
    ar_cli_close_model(&m);
    return ar_cli_finish_output(rc);
}
