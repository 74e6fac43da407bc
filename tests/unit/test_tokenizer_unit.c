/*
 * test_tokenizer_unit.c - the tokenizer's behaviour, case by case (src/tokenizer/); the
 * whole-corpus comparison with the reference lives in tests/golden/test_tokenizer.c.
 *
 * Two kinds of tokenizer are used:
 * - The real Qwen2.5 vocabulary (qwen2-tokenizer/ggml-vocab-qwen2.5.gguf of the test data),
 *   opened once on first use and shared; the tests that need it are skipped when the data
 *   is missing. They cover added-token matching, invalid UTF-8, output buffers, decoding,
 *   lookups, NFC, the word cache (also from several threads) and pre-tokenizer edge cases.
 * - A tiny vocabulary built here: the 256 byte tokens (id = byte value), "ab", "Ġa", "xyz",
 *   merges "a b" and "Ġ a", and added tokens "<A>", "<A><B>", "A><B>C", "<|end|>". It is
 *   written as a vocabulary-only GGUF image (tests/common/model_writer.h, opened from
 *   memory) or as tokenizer.json text (to a temporary folder), whole or with one part
 *   broken, for the loaders' error paths and for behaviour that needs a vocabulary of its
 *   own (overlapping added tokens, ignore_merges, small limits). These need no test data.
 *
 * Ids spelled out in a test were checked with Hugging Face tokenizers 0.23.2 on
 * qwen2-tokenizer/tokenizer.json (the reference of tokenizer-golden.jsonl), or on the tiny
 * vocabulary written as tokenizer.json. Elsewhere a test compares two ways of computing the
 * same thing: a text and its NFC form, cache on and off, one thread and four, pieces
 * tokenized alone and together.
 */
#include "testutil.h"

#include "archrouter.h"
#include "model/model.h"
#include "model_writer.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------- */

#define QWEN_BOS    151643 /* <|endoftext|>: bos and pad */
#define QWEN_START  151644 /* <|im_start|> */
#define QWEN_END    151645 /* <|im_end|>: eos */
#define QWEN_ADDED0 151643 /* the first added token */
#define QWEN_ADDEDN 151665 /* one past the last added token */

#define N_OF(a) (sizeof(a) / sizeof *(a))

static ar_tokenizer *qwen_tok; /* opened by qwen(), freed by the group teardown */

/* The real Qwen2.5 tokenizer; skips the test when the test data is missing. */
static const ar_tokenizer *qwen(void) {
    AR_REQUIRE_TESTDATA();
    if (!qwen_tok) {
        const char *path = ar_test_data_path("qwen2-tokenizer/ggml-vocab-qwen2.5.gguf");
        ar_status st = ar_tokenizer_open(path, NULL, &qwen_tok);
        if (st != AR_OK) fail_msg("%s: %s", path, ar_tokenizer_errmsg(qwen_tok));
    }
    return qwen_tok;
}

static int teardown(void **state) {
    (void)state;
    ar_tokenizer_free(qwen_tok);
    qwen_tok = NULL;
    return 0;
}

/* Tokenize, which must succeed, into ids[0..cap); returns the count. */
static size_t enc(const ar_tokenizer *t, const char *s, size_t len, uint32_t flags, int32_t *ids,
                  size_t cap) {
    size_t n = 0;
    ar_status st = ar_tokenize(t, s, len, flags, ids, cap, &n);
    if (st != AR_OK) fail_msg("tokenize \"%.60s\": %s (n %zu)", s, ar_strerror(st), n);
    return n;
}

static size_t enc_str(const ar_tokenizer *t, const char *s, uint32_t flags, int32_t *ids,
                      size_t cap) {
    return enc(t, s, strlen(s), flags, ids, cap);
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s (%zu):", what, n);
    for (size_t i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, n > 40 ? " ...\n" : "\n");
}

static void assert_ids(const int32_t *got, size_t n_got, const int32_t *want, size_t n_want,
                       const char *what) {
    if (n_got == n_want && (n_got == 0 || memcmp(got, want, n_got * sizeof *got) == 0)) return;
    fprintf(stderr, "%s: ids differ\n", what);
    print_ids("got", got, n_got);
    print_ids("want", want, n_want);
    fail_msg("%s: ids differ", what);
}

/* ids of `s` must be exactly `want`. */
static void expect_ids(const ar_tokenizer *t, const char *s, size_t len, uint32_t flags,
                       const int32_t *want, size_t n_want) {
    int32_t ids[256];
    size_t n = enc(t, s, len, flags, ids, N_OF(ids));
    assert_ids(ids, n, want, n_want, s);
}

/* Two texts give the same ids. */
static void expect_same(const ar_tokenizer *t, const char *a, size_t a_len, const char *b,
                        size_t b_len, uint32_t flags) {
    int32_t x[512], y[512];
    size_t nx = enc(t, a, a_len, flags, x, N_OF(x)), ny = enc(t, b, b_len, flags, y, N_OF(y));
    assert_ids(x, nx, y, ny, a);
}

/* Decode ids into buf (which must be large enough); returns the length. */
static size_t dec(const ar_tokenizer *t, const int32_t *ids, size_t n, char *buf, size_t cap) {
    size_t len = 0;
    ar_status st = ar_detokenize(t, ids, n, buf, cap, &len);
    if (st != AR_OK) fail_msg("detokenize: %s", ar_strerror(st));
    return len;
}

/* The length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629), or 0. Written here
 * so that the tests do not check the library with its own validator. */
static size_t utf8_seq(const uint8_t *s, size_t n) {
    if (n == 0) return 0;
    if (s[0] < 0x80) return 1;
    size_t len;
    uint32_t cp, min;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        len = 2, cp = s[0] & 0x1F, min = 0x80;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        len = 3, cp = s[0] & 0x0F, min = 0x800;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        len = 4, cp = s[0] & 0x07, min = 0x10000;
    else
        return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static bool utf8_ok(const char *p, size_t n) {
    const uint8_t *s = (const uint8_t *)p;
    for (size_t i = 0, k; i < n; i += k)
        if ((k = utf8_seq(s + i, n - i)) == 0) return false;
    return true;
}

/* ---- a tiny vocabulary, as GGUF metadata or tokenizer.json ------------------------------ */

/* GPT-2's byte-to-unicode alphabet, written out independently of bpe.c: printable bytes
 * stand for themselves, the other 68 become U+0100.. in byte order. UTF-8 into out[3]. */
static void bytelevel(uint8_t b, char *out) {
    uint32_t cp = b, next = 256;
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    if (!printable) {
        for (int i = 0; i < b; i++)
            if (!((i >= 0x21 && i <= 0x7E) || (i >= 0xA1 && i <= 0xAC) || i >= 0xAE)) next++;
        cp = next;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        out[2] = 0;
    }
}

enum {
    TINY_AB = 256,  /* "ab" */
    TINY_GA = 257,  /* "Ġa" (" a") */
    TINY_XYZ = 258, /* "xyz": no merge makes it */
    TINY_A = 259,   /* added "<A>" */
    TINY_AB2 = 260, /* added "<A><B>" */
    TINY_ABC = 261, /* added "A><B>C" */
    TINY_END = 262, /* added "<|end|>" */
    TINY_N = 263
};

static const char *const tiny_added[] = {"<A>", "<A><B>", "A><B>C", "<|end|>"};

/* Token texts of the tiny vocabulary in id order (static storage). */
static const char *tiny_text(int32_t id) {
    static char bytes[256][3];
    if (id < 256) {
        bytelevel((uint8_t)id, bytes[id]);
        return bytes[id];
    }
    static const char *const more[] = {"ab", "\xC4\xA0\x61" /* "Ġa" */, "xyz"};
    return id < TINY_A ? more[id - 256] : tiny_added[id - TINY_A];
}

/* What a GGUF variant changes (zero = the valid vocabulary). */
typedef struct tiny_gguf {
    const char *model;      /* tokenizer.ggml.model; NULL: "gpt2" */
    const char *pre;        /* tokenizer.ggml.pre; NULL: "qwen2" */
    const char *omit;       /* leave this key out */
    int32_t token;          /* replace this token's text ... (0: none) */
    const char *token_text; /* ... by this */
    const char *merge;      /* append this merge (after the two valid ones) */
} tiny_gguf;

static const char *const tiny_merges[] = {"a b", "\xC4\xA0 a"};

static int tiny_kv(mw_buf *b, const tiny_gguf *v) {
    int n = 0;
    const char *keys[] = {"tokenizer.ggml.model", "tokenizer.ggml.pre", "tokenizer.ggml.tokens",
                          "tokenizer.ggml.token_type", "tokenizer.ggml.merges"};
    for (size_t k = 0; k < N_OF(keys); k++) {
        if (v->omit && strcmp(v->omit, keys[k]) == 0) continue;
        n++;
        switch (k) {
        case 0: mw_gguf_kv_str(b, keys[k], v->model ? v->model : "gpt2"); break;
        case 1: mw_gguf_kv_str(b, keys[k], v->pre ? v->pre : "qwen2"); break;
        case 2:
            mw_gguf_key(b, keys[k], MW_ARRAY);
            mw_gguf_array(b, MW_STRING, TINY_N);
            for (int32_t i = 0; i < TINY_N; i++)
                mw_gguf_str(b, v->token && i == v->token ? v->token_text : tiny_text(i));
            break;
        case 3:
            mw_gguf_key(b, keys[k], MW_ARRAY);
            mw_gguf_array(b, MW_I32, TINY_N);
            for (int32_t i = 0; i < TINY_N; i++) {
                /* CONTROL, USER_DEFINED, NORMAL, as llama.cpp's converter assigns them. */
                mw_u32(b, i >= TINY_END ? 3 : i >= TINY_A ? 4 : 1);
            }
            break;
        case 4: {
            const char *m[3] = {tiny_merges[0], tiny_merges[1], v->merge};
            mw_gguf_kv_str_array(b, keys[k], m, v->merge ? 3 : 2);
            break;
        }
        }
    }
    return n;
}

static void tiny_kv_hook(mw_buf *b, void *user) {
    tiny_kv(b, user);
}

/* The tiny vocabulary as a vocabulary-only GGUF image (with the qwen2 hyper-parameters
 * that the model reader wants), into *file. */
static void tiny_gguf_image(const tiny_gguf *v, mw_buf *file) {
    mw_buf scratch = {0};
    mw_qwen2 s = mw_qwen2_default();
    s.no_tensors = true;
    s.bos_id = TINY_END;
    s.eos_id = TINY_END;
    s.chat_template = "{{ messages }}";
    s.extra_kv = tiny_kv_hook;
    s.n_extra_kv = tiny_kv(&scratch, v);
    s.user = (void *)v;
    mw_qwen2_gguf(&s, file, NULL);
    mw_free(&scratch);
}

/* A tokenizer from the tiny vocabulary, through a model opened from the GGUF image in
 * memory. Returns the status; *out is the handle (failed or not). */
static ar_status tiny_gguf_open(const tiny_gguf *v, const ar_tokenizer_params *params,
                                ar_tokenizer **out) {
    mw_buf file = {0};
    tiny_gguf_image(v, &file);
    ar_model_params mp = ar_model_default_params();
    mp.allow_vocab_only = true;
    ar_model *m = NULL;
    ar_status st = ar_model_open_memory(file.data, file.len, NULL, &mp, &m);
    if (st != AR_OK) fail_msg("vocabulary-only GGUF: %s", ar_model_errmsg(m));
    st = ar_tokenizer_from_model(m, params, out);
    ar_model_free(m); /* the tokenizer keeps no reference to the model */
    mw_free(&file);
    return st;
}

static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static json_t *added_token(int32_t id, const char *content, bool special) {
    return json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content", content,
                     "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special",
                     special);
}

/* The tiny vocabulary as a tokenizer.json document (Hugging Face layout, as Qwen2's). */
static json_t *tiny_json(void) {
    json_t *vocab = json_object(), *merges = json_array(), *added = json_array();
    for (int32_t i = 0; i < TINY_A; i++) json_object_set_new(vocab, tiny_text(i), json_integer(i));
    json_array_append_new(merges, json_pack("[s, s]", "a", "b"));
    json_array_append_new(merges, json_pack("[s, s]", "\xC4\xA0", "a"));
    for (int32_t i = TINY_A; i < TINY_N; i++)
        json_array_append_new(added, added_token(i, tiny_text(i), i == TINY_END));
    json_t *model = json_pack("{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b, s:o, s:o}", "type", "BPE",
                              "dropout", "unk_token", "continuing_subword_prefix", "",
                              "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0,
                              "ignore_merges", 0, "vocab", vocab, "merges", merges);
    json_t *pre = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type",
                            "Sequence", "pretokenizers", "type", "Split", "pattern", "Regex",
                            qwen2_regex, "behavior", "Isolated", "invert", 0, "type", "ByteLevel",
                            "add_prefix_space", 0, "trim_offsets", 0, "use_regex", 0);
    json_t *bl = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                           "trim_offsets", 0, "use_regex", 0);
    json_t *root =
        json_pack("{s:s, s:n, s:n, s:o, s:{s:s}, s:o, s:o, s:O, s:o}", "version", "1.0",
                  "truncation", "padding", "added_tokens", added, "normalizer", "type", "NFC",
                  "pre_tokenizer", pre, "post_processor", bl, "decoder", bl, "model", model);
    assert_non_null(root);
    return root;
}

/* Write a tokenizer.json document to <temp>/<name> (json_decref'd); returns the path. */
static const char *write_json(json_t *root, const char *name) {
    char *text = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
    assert_non_null(text);
    const char *path = ar_test_write_temp(0, name, text, strlen(text));
    assert_non_null(path);
    free(text);
    json_decref(root);
    return path;
}

static ar_tokenizer *must_open(const char *path, const ar_tokenizer_params *params) {
    ar_tokenizer *t = NULL;
    ar_status st = ar_tokenizer_open(path, params, &t);
    if (st != AR_OK) fail_msg("%s: %s: %s", path, ar_strerror(st), ar_tokenizer_errmsg(t));
    return t;
}

static ar_tokenizer *tiny_open(const ar_tokenizer_params *params) {
    return must_open(write_json(tiny_json(), "tiny.json"), params);
}

/* The open failed with `want` and a message containing `substr`; the failed handle
 * behaves as documented. Frees it. */
static void expect_failed(ar_status st, ar_tokenizer *t, ar_status want, const char *substr) {
    const char *msg = ar_tokenizer_errmsg(t);
    if (st != want || !t || !strstr(msg, substr))
        fail_msg("expected %s with \"%s\", got %s: \"%s\"", ar_strerror(want), substr,
                 ar_strerror(st), msg);
    int32_t ids[4];
    size_t n = 99;
    char buf[8];
    assert_int_equal(ar_tokenize(t, "ab", 2, 0, ids, 4, &n), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_detokenize(t, ids, 0, buf, sizeof buf, &n), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_tokenizer_n_tokens(t), 0);
    assert_null(ar_token_text(t, 0));
    assert_int_equal(ar_tokenizer_special(t, AR_TOKEN_BOS), -1);
    assert_null(ar_tokenizer_chat_template(t));
    ar_tokenizer_free(t);
}

static void expect_json_fails(json_t *root, ar_status want, const char *substr) {
    ar_tokenizer *t = NULL;
    ar_status st = ar_tokenizer_open(write_json(root, "broken.json"), NULL, &t);
    expect_failed(st, t, want, substr);
}

static void expect_gguf_fails(const tiny_gguf *v, ar_status want, const char *substr) {
    ar_tokenizer *t = NULL;
    ar_status st = tiny_gguf_open(v, NULL, &t);
    expect_failed(st, t, want, substr);
}

/* ---- 1. added tokens ------------------------------------------------------------------ */

static void test_special_chat_markup(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    const char *s = "<|im_start|>user\nhi<|im_end|>";
    int32_t ids[64], mid[16];
    size_t n = enc_str(t, s, AR_TOKENIZE_SPECIAL, ids, N_OF(ids));
    static const int32_t want[] = {QWEN_START, 872, 198, 6023, QWEN_END}; /* user \n hi */
    assert_ids(ids, n, want, N_OF(want), s);
    /* Between the markers: the ids of the plain text. */
    size_t n_mid = enc_str(t, "user\nhi", 0, mid, N_OF(mid));
    assert_ids(ids + 1, n - 2, mid, n_mid, "user\\nhi");

    /* Without the flag the markers are characters: no added token id can come out. */
    n = enc_str(t, s, 0, ids, N_OF(ids));
    static const int32_t plain[] = {27,   91, 318, 4906, 91,   29, 872, 198,
                                    6023, 27, 91,  318,  6213, 91, 29};
    assert_ids(ids, n, plain, N_OF(plain), s);
    char buf[64];
    size_t len = dec(t, ids, n, buf, sizeof buf);
    assert_int_equal(len, strlen(s));
    assert_memory_equal(buf, s, len);
}

/* Every added token: its text gives its id with AR_TOKENIZE_SPECIAL and only ordinary ids
 * without, alone and inside other text. */
static void test_special_no_injection(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    for (int32_t id = QWEN_ADDED0; id < QWEN_ADDEDN; id++) {
        const char *content = ar_token_text(t, id);
        assert_non_null(content);
        char text[128];
        snprintf(text, sizeof text, "x%sy %s", content, content);
        int32_t ids[128];
        size_t n = enc_str(t, content, AR_TOKENIZE_SPECIAL, ids, N_OF(ids));
        assert_ids(ids, n, &id, 1, content);
        n = enc_str(t, text, AR_TOKENIZE_SPECIAL, ids, N_OF(ids));
        size_t hits = 0;
        for (size_t i = 0; i < n; i++) hits += ids[i] == id;
        assert_int_equal(hits, 2);
        for (int k = 0; k < 2; k++) {
            n = enc_str(t, k ? text : content, 0, ids, N_OF(ids));
            for (size_t i = 0; i < n; i++)
                if (ids[i] >= QWEN_ADDED0) fail_msg("%s: id %d without the flag", text, ids[i]);
            char buf[128];
            size_t len = dec(t, ids, n, buf, sizeof buf);
            assert_int_equal(len, strlen(k ? text : content));
            assert_memory_equal(buf, k ? text : content, len);
        }
    }
}

/* Added tokens at the start, at the end, side by side, next to spaces, cut short. */
static void test_special_positions(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    static const struct {
        const char *text;
        int32_t ids[8];
        size_t n;
    } cases[] = {
        {"<|im_start|>", {QWEN_START}, 1},
        {"<|im_start|><|im_end|>", {QWEN_START, QWEN_END}, 2},
        {"a<|im_start|>b", {64, QWEN_START, 65}, 3},
        {" <|im_start|> ", {220, QWEN_START, 220}, 3},
        {"<|endoftext|>!", {QWEN_BOS, 0}, 2},
        {"<|im_start|>\n", {QWEN_START, 198}, 2},
        {"</tool_call><tool_call>", {151658, 151657}, 2},
        {"<</tool_call>", {27, 151658}, 2},
        {"<tool_call>>", {151657, 29}, 2},
        /* Cut short: ordinary text, the same as without the flag. */
        {"<|im_sta", {27, 91, 318, 79951}, 4},
        {"<|im_start|", {27, 91, 318, 4906, 91}, 5},
        {"<|im_start", {27, 91, 318, 4906}, 4},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        expect_ids(t, cases[i].text, strlen(cases[i].text), AR_TOKENIZE_SPECIAL, cases[i].ids,
                   cases[i].n);
        if (i >= N_OF(cases) - 3)
            expect_ids(t, cases[i].text, strlen(cases[i].text), 0, cases[i].ids, cases[i].n);
    }
}

/* Overlapping added tokens: the leftmost match wins, then the longest one starting there
 * (Hugging Face's added-vocabulary matcher), checked on the tiny vocabulary. */
static void test_special_leftmost_longest(void **state) {
    (void)state;
    ar_tokenizer *t = tiny_open(NULL);
    static const struct {
        const char *text;
        int32_t ids[8];
        size_t n;
    } cases[] = {
        {"<A><B>C", {TINY_AB2, 'C'}, 2},        /* longest at 0 beats "A><B>C" at 1 */
        {"<A>A><B>C", {TINY_A, TINY_ABC}, 2},   /* "<A>" then the next match */
        {"x<A><B", {'x', TINY_A, '<', 'B'}, 4}, /* "<A><B>" cut short */
        {"<A><A><B>", {TINY_A, TINY_AB2}, 2},   /* the second "<A>" starts the longer one */
        {"<|end|><|end|>", {TINY_END, TINY_END}, 2},
        {"ab<|end|>", {TINY_AB, TINY_END}, 2},
    };
    for (size_t i = 0; i < N_OF(cases); i++)
        expect_ids(t, cases[i].text, strlen(cases[i].text), AR_TOKENIZE_SPECIAL, cases[i].ids,
                   cases[i].n);
    /* Without the flag: bytes and merges only. */
    static const int32_t plain[] = {'<', 'A', '>', '<', 'B', '>', 'C'};
    expect_ids(t, "<A><B>C", 7, 0, plain, N_OF(plain));
    ar_tokenizer_free(t);
}

/* ---- 2. invalid UTF-8 ------------------------------------------------------------------- */

static void test_invalid_utf8(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    /* Each case: the text, the offset of its first bad byte, and the text with every byte
     * that does not start a well-formed sequence replaced by U+FFFD. */
#define FFFD "\xEF\xBF\xBD"
    static const struct {
        const char *text;
        size_t len, bad;
        const char *fixed;
    } cases[] = {
        {"ab\x80 xy", 6, 2, "ab" FFFD " xy"},                   /* lone continuation */
        {"abc\xE2\x82", 5, 3, "abc" FFFD FFFD},                 /* truncated at the end */
        {"\xE2\x82 x", 4, 0, FFFD FFFD " x"},                   /* truncated, then more */
        {"x\xC0\x80y", 4, 1, "x" FFFD FFFD "y"},                /* overlong NUL */
        {"\xC1\xBF", 2, 0, FFFD FFFD},                          /* overlong 2-byte */
        {"\xE0\x80\xAF", 3, 0, FFFD FFFD FFFD},                 /* overlong 3-byte */
        {"\xF0\x80\x80\xAF", 4, 0, FFFD FFFD FFFD FFFD},        /* overlong 4-byte */
        {"hi \xED\xA0\x80", 6, 3, "hi " FFFD FFFD FFFD},        /* surrogate D800 */
        {"\xED\xBF\xBF!", 4, 0, FFFD FFFD FFFD "!"},            /* surrogate DFFF */
        {"\xF4\x90\x80\x80", 4, 0, FFFD FFFD FFFD FFFD},        /* U+110000 */
        {"ok\xF5\x80\x80\x80", 6, 2, "ok" FFFD FFFD FFFD FFFD}, /* lead byte F5 */
        {"\xFF\xFE", 2, 0, FFFD FFFD},
        {"\xC3\xA9\xC3", 3, 2, "\xC3\xA9" FFFD},                   /* é, then a cut é */
        {"a\xF0\x9F\x98\x80\x80", 6, 5, "a\xF0\x9F\x98\x80" FFFD}, /* 😀, then a stray */
        {"\xF0\x9F\x98", 3, 0, FFFD FFFD FFFD},                    /* cut emoji */
        {"<|im_end|>\x80", 11, 10, "<|im_end|>" FFFD},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        const char *s = cases[i].text;
        size_t len = cases[i].len;
        assert_false(utf8_ok(s, len));
        for (uint32_t flags = 0; flags <= AR_TOKENIZE_SPECIAL; flags++) {
            int32_t ids[64];
            size_t n = 12345;
            assert_int_equal(ar_tokenize(t, s, len, flags, ids, N_OF(ids), &n),
                             AR_ERR_INVALID_INPUT);
            if (n != cases[i].bad)
                fail_msg("case %zu: bad byte at %zu, told %zu", i, cases[i].bad, n);
            /* Replacing: the same ids as the text with U+FFFD written in. */
            int32_t a[64], b[64];
            size_t na = enc(t, s, len, flags | AR_TOKENIZE_REPLACE_INVALID, a, N_OF(a));
            size_t nb = enc_str(t, cases[i].fixed, flags, b, N_OF(b));
            assert_ids(a, na, b, nb, cases[i].fixed);
        }
    }
    /* The ends of the valid ranges are accepted; REPLACE_INVALID leaves them alone. */
    static const char *const good[] = {
        "\x7F",         "\xC2\x80",     "\xDF\xBF",     "\xE0\xA0\x80",     "\xED\x9F\xBF",
        "\xEE\x80\x80", "\xEF\xBF\xBF", "\xEF\xBF\xBE", "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF",
        FFFD,
    };
    for (size_t i = 0; i < N_OF(good); i++) {
        assert_true(utf8_ok(good[i], strlen(good[i])));
        int32_t ids[16];
        size_t n = enc_str(t, good[i], 0, ids, N_OF(ids));
        expect_ids(t, good[i], strlen(good[i]), AR_TOKENIZE_REPLACE_INVALID, ids, n);
        char buf[16];
        size_t len = dec(t, ids, n, buf, sizeof buf);
        assert_int_equal(len, strlen(good[i]));
        assert_memory_equal(buf, good[i], len);
    }
#undef FFFD
}

/* ---- 3. limits, buffers and arguments ---------------------------------------------------- */

static void test_max_input_bytes(void **state) {
    (void)state;
    ar_tokenizer_params p = ar_tokenizer_default_params();
    assert_int_equal(p.max_input_bytes, 16u << 20);
    p.max_input_bytes = 8;
    ar_tokenizer *t = tiny_open(&p);
    int32_t ids[32];
    size_t n = 99;
    assert_int_equal(enc(t, "abababab", 8, 0, ids, N_OF(ids)), 4);
    assert_int_equal(ar_tokenize(t, "ababababa", 9, 0, ids, N_OF(ids), &n), AR_ERR_LIMIT);
    /* The limit is on the input as given, before any replacement. */
    assert_int_equal(ar_tokenize(t, "\x80\x80\x80\x80\x80\x80\x80\x80\x80", 9,
                                 AR_TOKENIZE_REPLACE_INVALID, ids, N_OF(ids), &n),
                     AR_ERR_LIMIT);
    assert_int_equal(
        enc(t, "\x80\x80\x80\x80\x80\x80\x80\x80", 8, AR_TOKENIZE_REPLACE_INVALID, ids, N_OF(ids)),
        8 * 3);
    ar_tokenizer_free(t);
}

static void test_buffer_too_small(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    const char *s = "The quick brown fox jumps over the lazy dog.";
    static const int32_t want[] = {785, 3974, 13876, 38835, 34208, 916, 279, 15678, 5562, 13};
    int32_t ids[N_OF(want) + 4];
    size_t n = 0;
    /* Asking for the size: no buffer at all. */
    assert_int_equal(ar_tokenize(t, s, strlen(s), 0, NULL, 0, &n), AR_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, N_OF(want));
    n = 0;
    assert_int_equal(ar_tokenize(t, s, strlen(s), 0, ids, N_OF(want) - 1, &n),
                     AR_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(n, N_OF(want));
    /* Exactly the size told. */
    int32_t *exact = malloc(sizeof want); /* exact size, so that ASan sees an overrun */
    assert_non_null(exact);
    assert_int_equal(ar_tokenize(t, s, strlen(s), 0, exact, N_OF(want), &n), AR_OK);
    assert_ids(exact, n, want, N_OF(want), s);
    free(exact);
    /* The empty text needs no buffer. */
    n = 99;
    assert_int_equal(ar_tokenize(t, "", 0, 0, NULL, 0, &n), AR_OK);
    assert_int_equal(n, 0);
    n = 99;
    assert_int_equal(ar_tokenize(t, NULL, 0, AR_TOKENIZE_SPECIAL, NULL, 0, &n), AR_OK);
    assert_int_equal(n, 0);
}

static void test_bad_arguments(void **state) {
    (void)state;
    ar_tokenizer *t = tiny_open(NULL);
    int32_t ids[8] = {'a'};
    size_t n;
    char buf[8];
    assert_int_equal(ar_tokenize(NULL, "a", 1, 0, ids, 8, &n), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_tokenize(t, "a", 1, 0, ids, 8, NULL), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_tokenize(t, NULL, 1, 0, ids, 8, &n), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_tokenize(t, "a", 1, 0, NULL, 8, &n), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_detokenize(NULL, ids, 1, buf, 8, &n), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_detokenize(t, ids, 1, buf, 8, NULL), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_detokenize(t, NULL, 1, buf, 8, &n), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_detokenize(t, ids, 1, NULL, 8, &n), AR_ERR_INVALID_ARG);
    assert_null(ar_token_bytes(NULL, 0, &n));
    assert_null(ar_token_text(NULL, 0));
    assert_int_equal(ar_tokenizer_n_tokens(NULL), 0);
    assert_int_equal(ar_tokenizer_find(NULL, "a"), -1);
    assert_int_equal(ar_tokenizer_find(t, NULL), -1);
    assert_int_equal(ar_tokenizer_special(NULL, AR_TOKEN_EOS), -1);
    assert_int_equal(ar_tokenizer_special(t, (ar_special_token)3), -1);
    assert_int_equal(ar_tokenizer_special(t, (ar_special_token)-1), -1);
    assert_null(ar_tokenizer_chat_template(NULL));
    assert_string_equal(ar_tokenizer_errmsg(NULL), "out of memory");
    ar_tokenizer_free(NULL);
    /* Opening without somewhere to put the handle, or without a path / model. */
    assert_int_equal(ar_tokenizer_open("x.json", NULL, NULL), AR_ERR_INVALID_ARG);
    ar_tokenizer *bad = NULL;
    ar_status st = ar_tokenizer_open(NULL, NULL, &bad);
    expect_failed(st, bad, AR_ERR_INVALID_ARG, "no path");
    bad = NULL;
    st = ar_tokenizer_from_model(NULL, NULL, &bad);
    expect_failed(st, bad, AR_ERR_INVALID_ARG, "no model");
    ar_tokenizer_free(t);
}

/* NUL is an ordinary byte: its token is U+0100 ("Ā") in the byte-level alphabet. */
static void test_nul_bytes(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    int32_t nul = ar_tokenizer_find(t, "\xC4\x80");
    assert_int_equal(nul, 188);
    static const int32_t a_nul_b[] = {64, 188, 65};
    expect_ids(t, "a\0b", 3, 0, a_nul_b, 3);
    static const int32_t two[] = {188, 188};
    expect_ids(t, "\0\0", 2, AR_TOKENIZE_SPECIAL, two, 2);
    /* Through NFC (non-ASCII in the text): é NUL e+U+0301 is é NUL é. */
    static const int32_t e_nul_e[] = {963, 188, 963};
    expect_ids(t, "\xC3\xA9\0e\xCC\x81", 6, 0, e_nul_e, 3);
    char buf[8];
    assert_int_equal(dec(t, e_nul_e, 3, buf, sizeof buf), 5);
    assert_memory_equal(buf, "\xC3\xA9\0\xC3\xA9", 5);
    /* Next to an added token. */
    static const int32_t end_nul[] = {QWEN_END, 188};
    expect_ids(t, "<|im_end|>\0", 11, AR_TOKENIZE_SPECIAL, end_nul, 2);
}

/* ---- 4. decoding -------------------------------------------------------------------------- */

static void test_decode_round_trip(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    /* NFC-stable texts: decoding gives them back byte for byte. */
    static const char *const texts[] = {
        "Hello, world!",
        "  leading and trailing  \n\n",
        "tabs\tand\r\nCRLF\r\n\r\n",
        "caf\xC3\xA9 na\xC3\xAFve \xC3\x85ngstr\xC3\xB6m",
        "\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C", /* 你好，世界 */
        "\xED\x95\x9C\xEA\xB5\xAD\xEC\x96\xB4",                         /* 한국어 */
        "\xD9\x85\xD8\xB1\xD8\xAD\xD8\xA8\xD8\xA7",                     /* مرحبا */
        "\xE0\xA4\xA8\xE0\xA4\xAE\xE0\xA4\xB8\xE0\xA5\x8D\xE0\xA4\xA4\xE0\xA5\x87", /* नमस्ते */
        "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 family",
        "\xF0\x9D\x8C\x86\xF0\xA0\x9C\x8E rare",
        "x = y**2 # don't 'quote' I'LL\n\tif (a) { return 1; }",
        "<|im_start|>system\nYou route.<|im_end|>\n",
        "\xC2\xA0\xE3\x80\x80\xE2\x80\xA8 odd spaces",
        "1234567890 \xD9\xA3\xD9\xA4 \xE2\x85\xAB \xC2\xBD",
    };
    for (size_t i = 0; i < N_OF(texts); i++) {
        for (uint32_t flags = 0; flags <= AR_TOKENIZE_SPECIAL; flags++) {
            int32_t ids[256];
            size_t n = enc_str(t, texts[i], flags, ids, N_OF(ids));
            char buf[512];
            size_t len = dec(t, ids, n, buf, sizeof buf);
            if (len != strlen(texts[i]) || memcmp(buf, texts[i], len) != 0)
                fail_msg("\"%s\" (flags %u) decodes to \"%.*s\"", texts[i], flags, (int)len, buf);
        }
    }
}

/* A character that BPE leaves in several byte pieces: no piece alone is UTF-8, together
 * they are the character. */
static void test_decode_split_character(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    static const struct {
        const char *text;
        int32_t ids[3];
    } cases[] = {
        {"\xF0\x9D\x8C\x86", {56252, 234, 228}},  /* U+1D306 */
        {"\xF0\xA0\x9C\x8E", {101862, 250, 236}}, /* U+2070E */
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        expect_ids(t, cases[i].text, 4, 0, cases[i].ids, 3);
        char joined[8];
        size_t at = 0;
        for (int k = 0; k < 3; k++) {
            size_t len = 0;
            const char *p = ar_token_bytes(t, cases[i].ids[k], &len);
            assert_non_null(p);
            assert_true(len >= 1 && at + len <= 4);
            assert_false(utf8_ok(p, len));
            memcpy(joined + at, p, len);
            at += len;
        }
        assert_int_equal(at, 4);
        assert_memory_equal(joined, cases[i].text, 4);
        assert_true(utf8_ok(joined, at));
        char buf[4];
        assert_int_equal(dec(t, cases[i].ids, 3, buf, sizeof buf), 4);
        assert_memory_equal(buf, cases[i].text, 4);
    }
}

static void test_decode_buffers(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    static const int32_t ids[] = {14990, 1879, QWEN_END}; /* "hello", " world", <|im_end|> */
    const char *want = "hello world<|im_end|>";
    size_t full = strlen(want), len = 0;
    assert_int_equal(ar_detokenize(t, ids, 3, NULL, 0, &len), AR_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, full);
    char buf[32];
    len = 0;
    assert_int_equal(ar_detokenize(t, ids, 3, buf, full - 1, &len), AR_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(len, full);
    len = 0;
    char *exact = malloc(full); /* exact size, so that ASan sees an overrun */
    assert_non_null(exact);
    assert_int_equal(ar_detokenize(t, ids, 3, exact, full, &len), AR_OK);
    assert_int_equal(len, full);
    assert_memory_equal(exact, want, full);
    free(exact);
    len = 99;
    assert_int_equal(ar_detokenize(t, ids, 0, NULL, 0, &len), AR_OK);
    assert_int_equal(len, 0);
    /* Ids out of range, first or after good ones. */
    int32_t n_tokens = ar_tokenizer_n_tokens(t);
    const int32_t bad[] = {-1, n_tokens, INT32_MAX, INT32_MIN};
    for (size_t i = 0; i < N_OF(bad); i++) {
        int32_t two[2] = {14990, bad[i]};
        assert_int_equal(ar_detokenize(t, two + 1, 1, buf, sizeof buf, &len), AR_ERR_INVALID_ARG);
        assert_int_equal(ar_detokenize(t, two, 2, buf, sizeof buf, &len), AR_ERR_INVALID_ARG);
        assert_null(ar_token_bytes(t, bad[i], &len));
        assert_null(ar_token_text(t, bad[i]));
    }
    /* The last id is in range. */
    assert_non_null(ar_token_bytes(t, n_tokens - 1, &len));
}

static void test_token_text_and_bytes(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    static const struct {
        int32_t id;
        const char *text, *bytes;
    } cases[] = {
        {23811, "\xC4\xA0hello", " hello"},
        {279, "\xC4\xA0the", " the"},
        {198, "\xC4\x8A", "\n"},
        {0, "!", "!"},
        {188, "\xC4\x80", ""}, /* NUL: compared with length 1 below */
        {963, "\xC3\x83\xC2\xA9", "\xC3\xA9"},
        {QWEN_START, "<|im_start|>", "<|im_start|>"},
        {151657, "<tool_call>", "<tool_call>"},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        assert_string_equal(ar_token_text(t, cases[i].id), cases[i].text);
        size_t len = 99;
        const char *p = ar_token_bytes(t, cases[i].id, &len);
        assert_non_null(p);
        size_t want = cases[i].id == 188 ? 1 : strlen(cases[i].bytes);
        assert_int_equal(len, want);
        assert_memory_equal(p, cases[i].bytes, want);
    }
    assert_non_null(ar_token_bytes(t, 0, NULL)); /* len may be NULL */
}

/* ---- 5. lookups ------------------------------------------------------------------------ */

static void test_lookups(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    assert_int_equal(ar_tokenizer_n_tokens(t), 151936);
    assert_int_equal(ar_tokenizer_find(t, "<|im_end|>"), QWEN_END);
    assert_int_equal(ar_tokenizer_find(t, "<|im_start|>"), QWEN_START);
    assert_int_equal(ar_tokenizer_find(t, "</tool_call>"), 151658);
    assert_int_equal(ar_tokenizer_find(t, "\xC4\xA0the"), 279);
    assert_int_equal(ar_tokenizer_find(t, "the"), 1782);
    assert_int_equal(ar_tokenizer_find(t, " the"), -1); /* raw bytes are not vocabulary text */
    assert_int_equal(ar_tokenizer_find(t, "zzqqxx-not-a-token"), -1);
    assert_int_equal(ar_tokenizer_find(t, "<|im_end|"), -1);
    assert_int_equal(ar_tokenizer_find(t, ""), -1);
    assert_int_equal(ar_tokenizer_special(t, AR_TOKEN_BOS), QWEN_BOS);
    assert_int_equal(ar_tokenizer_special(t, AR_TOKEN_EOS), QWEN_END);
    assert_int_equal(ar_tokenizer_special(t, AR_TOKEN_PAD), QWEN_BOS);
    const char *tmpl = ar_tokenizer_chat_template(t);
    assert_non_null(tmpl);
    assert_non_null(strstr(tmpl, "<|im_start|>"));
    assert_non_null(strstr(tmpl, "<|im_end|>"));
    /* Every BPE and added token is found by its own text. */
    for (int32_t id = 0; id < QWEN_ADDEDN; id++) {
        const char *text = ar_token_text(t, id);
        if (ar_tokenizer_find(t, text) != id)
            fail_msg("find(\"%s\") = %d, not %d", text, ar_tokenizer_find(t, text), id);
    }
}

/* The ids past the added tokens ("[PAD151665]"... in the GGUF, type UNUSED) have a
 * vocabulary text, so find() of that text must give them (header: "the token whose
 * vocabulary text is exactly `text`"). */
static void test_find_unused_tokens(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    for (int32_t id = QWEN_ADDEDN; id < ar_tokenizer_n_tokens(t); id++) {
        const char *text = ar_token_text(t, id);
        assert_non_null(text);
        if (ar_tokenizer_find(t, text) != id)
            fail_msg("find(\"%s\") = %d, not %d", text, ar_tokenizer_find(t, text), id);
    }
}

/* ---- 6. NFC ------------------------------------------------------------------------------ */

static void test_nfc(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
    /* {text, its NFC form}. */
    static const char *const pairs[][2] = {
        {"e\xCC\x81", "\xC3\xA9"},
        {"cafe\xCC\x81 au lait", "caf\xC3\xA9 au lait"},
        {"\xE2\x84\xAB", "\xC3\x85"},                  /* Angstrom sign -> Å */
        {"\xE1\x84\x80\xE1\x85\xA1", "\xEA\xB0\x80"},  /* conjoining jamo -> 가 */
        {"a\xCC\x81\xCC\xA3", "\xE1\xBA\xA1\xCC\x81"}, /* marks reordered, then composed */
        /* U+0958 is excluded from composition: NFC makes it longer (3 -> 6 bytes). */
        {"\xE0\xA5\x98", "\xE0\xA4\x95\xE0\xA4\xBC"},
        {"x\xE0\xA5\x98y \xE0\xA5\x98\xE0\xA5\x98 end",
         "x\xE0\xA4\x95\xE0\xA4\xBCy \xE0\xA4\x95\xE0\xA4\xBC\xE0\xA4\x95\xE0\xA4\xBC end"},
    };
    for (size_t i = 0; i < N_OF(pairs); i++)
        for (uint32_t flags = 0; flags <= AR_TOKENIZE_SPECIAL; flags++)
            expect_same(t, pairs[i][0], strlen(pairs[i][0]), pairs[i][1], strlen(pairs[i][1]),
                        flags);
    static const int32_t e_acute[] = {963};
    expect_ids(t, "e\xCC\x81", 3, 0, e_acute, 1);
    static const int32_t qa[] = {64704, 5502, 120};
    expect_ids(t, "\xE0\xA5\x98", 3, 0, qa, 3);
    static const int32_t cafe[] = {924, 58858, 7906, 1187, 275};
    expect_ids(t, "cafe\xCC\x81 au lait", 14, 0, cafe, N_OF(cafe));
    /* Decoding gives the normalized text. */
    char buf[16];
    assert_int_equal(dec(t, e_acute, 1, buf, sizeof buf), 2);
    assert_memory_equal(buf, "\xC3\xA9", 2);
    /* An added token splits the text before normalization: no composition across it. */
    static const int32_t split[] = {68, QWEN_END, 53839};
    expect_ids(t, "e<|im_end|>\xCC\x81", 13, AR_TOKENIZE_SPECIAL, split, 3);
}

/* ---- 7. the word cache --------------------------------------------------------------- */

typedef struct corpus {
    size_t n;
    char **text;
    size_t *len;
    int32_t **ids[2]; /* [flags][i]: the ids with the cache off (0: none; 1: special) */
    size_t *n_ids[2];
} corpus;

static void corpus_free(corpus *c) {
    for (size_t i = 0; i < c->n; i++) {
        free(c->text[i]);
        for (int f = 0; f < 2; f++)
            if (c->ids[f]) free(c->ids[f][i]);
    }
    free(c->text);
    free(c->len);
    for (int f = 0; f < 2; f++) {
        free(c->ids[f]);
        free(c->n_ids[f]);
    }
    memset(c, 0, sizeof *c);
}

/* The texts of tokenizer-golden.jsonl. */
static void corpus_load(corpus *c) {
    memset(c, 0, sizeof *c);
    size_t size;
    char *data = ar_test_read_file(ar_test_data_path("tokenizer-golden.jsonl"), &size);
    assert_non_null(data);
    size_t cap = 8192;
    c->text = malloc(cap * sizeof *c->text);
    c->len = malloc(cap * sizeof *c->len);
    assert_true(c->text && c->len);
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        json_error_t jerr;
        json_t *o = json_loads(line, JSON_ALLOW_NUL, &jerr);
        if (!o) fail_msg("tokenizer-golden.jsonl: %s", jerr.text);
        json_t *text = json_object_get(o, "text");
        assert_true(c->n < cap);
        c->len[c->n] = json_string_length(text);
        c->text[c->n] = malloc(c->len[c->n] + 1);
        assert_non_null(c->text[c->n]);
        memcpy(c->text[c->n], json_string_value(text), c->len[c->n] + 1);
        c->n++;
        json_decref(o);
    }
    free(data);
    assert_true(c->n > 5000);
}

static const uint32_t corpus_flags[2] = {0, AR_TOKENIZE_SPECIAL};

/* Tokenize text i; returns malloc'd ids. */
static int32_t *corpus_encode(const ar_tokenizer *t, const corpus *c, size_t i, int f, size_t *n) {
    size_t cap = c->len[i] + 1;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return NULL;
    if (ar_tokenize(t, c->text[i], c->len[i], corpus_flags[f], ids, cap, n) != AR_OK) {
        free(ids);
        return NULL;
    }
    return ids;
}

/* Count the texts whose ids differ from the corpus's, in order from `start`. */
static size_t corpus_mismatches(const ar_tokenizer *t, const corpus *c, size_t start) {
    size_t bad = 0;
    for (size_t k = 0; k < c->n; k++) {
        size_t i = (start + k) % c->n;
        for (int f = 0; f < 2; f++) {
            size_t n;
            int32_t *ids = corpus_encode(t, c, i, f, &n);
            bad += !ids || n != c->n_ids[f][i] ||
                   (n && memcmp(ids, c->ids[f][i], n * sizeof *ids) != 0);
            free(ids);
        }
    }
    return bad;
}

static void corpus_reference(corpus *c, const ar_tokenizer *t) {
    for (int f = 0; f < 2; f++) {
        c->ids[f] = calloc(c->n, sizeof *c->ids[f]);
        c->n_ids[f] = calloc(c->n, sizeof *c->n_ids[f]);
        assert_true(c->ids[f] && c->n_ids[f]);
        for (size_t i = 0; i < c->n; i++) {
            c->ids[f][i] = corpus_encode(t, c, i, f, &c->n_ids[f][i]);
            assert_non_null(c->ids[f][i]);
        }
    }
}

static ar_tokenizer *qwen_with_cache(size_t cache_bytes) {
    ar_tokenizer_params p = ar_tokenizer_default_params();
    p.cache_bytes = cache_bytes;
    return must_open(ar_test_data_path("qwen2-tokenizer/ggml-vocab-qwen2.5.gguf"), &p);
}

static void test_cache_sizes(void **state) {
    (void)state;
    const ar_tokenizer *dflt = qwen(); /* 4 MiB cache */
    corpus c;
    corpus_load(&c);
    ar_tokenizer *off = qwen_with_cache(0), *tiny = qwen_with_cache(4096);
    corpus_reference(&c, off);
    /* Twice each: the second pass reads what the first one cached. */
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(corpus_mismatches(dflt, &c, 0), 0);
        assert_int_equal(corpus_mismatches(tiny, &c, 0), 0);
        assert_int_equal(corpus_mismatches(off, &c, 0), 0);
    }
    ar_tokenizer_free(off);
    ar_tokenizer_free(tiny);
    corpus_free(&c);
}

typedef struct worker {
    const ar_tokenizer *tok;
    const corpus *c;
    size_t start, bad;
} worker;

static void *worker_run(void *arg) {
    worker *w = arg;
    for (int pass = 0; pass < 2; pass++) w->bad += corpus_mismatches(w->tok, w->c, w->start);
    return NULL;
}

/* Four threads tokenize the corpus with one shared tokenizer (each from another place, so
 * that they fill and reset the cache under each other). */
static void test_cache_threads(void **state) {
    (void)state;
    const ar_tokenizer *dflt = qwen();
    corpus c;
    corpus_load(&c);
    ar_tokenizer *off = qwen_with_cache(0), *tiny = qwen_with_cache(4096);
    corpus_reference(&c, off);
    const ar_tokenizer *toks[] = {tiny, dflt, off};
    for (size_t k = 0; k < N_OF(toks); k++) {
        enum { N_THREADS = 4 };
        worker w[N_THREADS];
        pthread_t th[N_THREADS];
        for (int i = 0; i < N_THREADS; i++) {
            w[i] = (worker){toks[k], &c, c.n * (size_t)i / N_THREADS, 0};
            assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
        }
        for (int i = 0; i < N_THREADS; i++) {
            assert_int_equal(pthread_join(th[i], NULL), 0);
            if (w[i].bad) fail_msg("tokenizer %zu, thread %d: %zu texts differ", k, i, w[i].bad);
        }
    }
    ar_tokenizer_free(off);
    ar_tokenizer_free(tiny);
    corpus_free(&c);
}

/* Caches smaller than one entry (a 64-byte word with 64 ids takes 324 bytes) must still
 * give the same results, and stay inside their memory. */
static void test_cache_smaller_than_an_entry(void **state) {
    (void)state;
    const char *s = "supercalifragilisticexpialidocious antidisestablishmentarianism "
                    "\xE4\xBD\xA0\xE5\xA5\xBD\xE4\xB8\x96\xE7\x95\x8C\xE4\xBD\xA0\xE5\xA5\xBD";
    ar_tokenizer_params p = ar_tokenizer_default_params();
    p.cache_bytes = 0;
    ar_tokenizer *off = tiny_open(&p);
    int32_t want[128], got[128];
    size_t n_want = enc_str(off, s, 0, want, N_OF(want));
    static const size_t sizes[] = {1, 16, 100, 323};
    for (size_t i = 0; i < N_OF(sizes); i++) {
        p.cache_bytes = sizes[i];
        ar_tokenizer *t = tiny_open(&p);
        for (int pass = 0; pass < 2; pass++) {
            size_t n = enc_str(t, s, 0, got, N_OF(got));
            assert_ids(got, n, want, n_want, "tiny cache");
        }
        ar_tokenizer_free(t);
    }
    ar_tokenizer_free(off);
}

/* ---- 8. loaders ---------------------------------------------------------------------------- */

/* The tiny vocabulary from GGUF and from tokenizer.json: the same tokenizer. */
static void test_tiny_vocabulary(void **state) {
    (void)state;
    tiny_gguf v = {0};
    ar_tokenizer *g = NULL, *j = tiny_open(NULL);
    assert_int_equal(tiny_gguf_open(&v, NULL, &g), AR_OK);
    /* The same GGUF as a file, through ar_tokenizer_open(). */
    mw_buf file = {0};
    tiny_gguf_image(&v, &file);
    ar_tokenizer *f = must_open(ar_test_write_temp(1, "tiny.gguf", file.data, file.len), NULL);
    mw_free(&file);
    assert_int_equal(ar_tokenizer_n_tokens(g), TINY_N);
    assert_int_equal(ar_tokenizer_n_tokens(j), TINY_N);
    assert_int_equal(ar_tokenizer_special(g, AR_TOKEN_BOS), TINY_END);
    assert_int_equal(ar_tokenizer_special(g, AR_TOKEN_EOS), TINY_END);
    assert_int_equal(ar_tokenizer_special(g, AR_TOKEN_PAD), -1);
    assert_string_equal(ar_tokenizer_chat_template(g), "{{ messages }}");
    assert_int_equal(ar_tokenizer_special(j, AR_TOKEN_BOS), -1); /* no tokenizer_config.json */
    assert_null(ar_tokenizer_chat_template(j));
    assert_int_equal(ar_tokenizer_n_tokens(f), TINY_N);
    assert_string_equal(ar_tokenizer_chat_template(f), "{{ messages }}");
    for (int32_t id = 0; id < TINY_N; id++) {
        assert_string_equal(ar_token_text(f, id), tiny_text(id));
        assert_string_equal(ar_token_text(g, id), tiny_text(id));
        assert_string_equal(ar_token_text(j, id), tiny_text(id));
        assert_int_equal(ar_tokenizer_find(g, tiny_text(id)), id);
        assert_int_equal(ar_tokenizer_find(j, tiny_text(id)), id);
    }
    /* Merges by rank: "a b" (0) before "Ġ a" (1). */
    static const struct {
        const char *text;
        int32_t ids[8];
        size_t n;
    } cases[] = {
        {"ab ab", {TINY_AB, ' ', TINY_AB}, 3},
        {" a", {TINY_GA}, 1},
        {"xyz", {'x', 'y', 'z'}, 3}, /* in the vocabulary, but no merge makes it */
        {"aab", {'a', TINY_AB}, 2},
        {"", {0}, 0},
    };
    for (size_t i = 0; i < N_OF(cases); i++) {
        expect_ids(f, cases[i].text, strlen(cases[i].text), 0, cases[i].ids, cases[i].n);
        expect_ids(g, cases[i].text, strlen(cases[i].text), 0, cases[i].ids, cases[i].n);
        expect_ids(j, cases[i].text, strlen(cases[i].text), 0, cases[i].ids, cases[i].n);
    }
    const char *s = "<A><B>C xyz ab\n\n<|end|> \xC3\xA9\xF0\x9F\x98\x80";
    for (uint32_t flags = 0; flags <= AR_TOKENIZE_SPECIAL; flags++) {
        int32_t a[64], b[64];
        size_t na = enc_str(g, s, flags, a, N_OF(a)), nb = enc_str(j, s, flags, b, N_OF(b));
        assert_ids(a, na, b, nb, s);
        assert_true(na > 10);
    }
    ar_tokenizer_free(f);
    ar_tokenizer_free(g);
    ar_tokenizer_free(j);
}

/* ignore_merges (tokenizer.json): a piece that is itself a token is taken whole. */
static void test_ignore_merges(void **state) {
    (void)state;
    json_t *root = tiny_json();
    json_object_set_new(json_object_get(root, "model"), "ignore_merges", json_true());
    ar_tokenizer *t = must_open(write_json(root, "ignore.json"), NULL);
    static const int32_t xyz[] = {TINY_XYZ}, xyzw[] = {'x', 'y', 'z', 'w'},
                         sp_xyz[] = {' ', 'x', 'y', 'z'};
    expect_ids(t, "xyz", 3, 0, xyz, 1);
    expect_ids(t, "xyzw", 4, 0, xyzw, 4);
    expect_ids(t, " xyz", 4, 0, sp_xyz, 4); /* " xyz" is no token */
    ar_tokenizer_free(t);
}

/* A checkpoint directory: tokenizer.json, and tokenizer_config.json for the special
 * tokens and the chat template. */
static void test_json_directory(void **state) {
    (void)state;
    char *dir = mw_temp_subdir("tokdir");
    json_t *root = tiny_json();
    char *text = json_dumps(root, JSON_COMPACT);
    assert_non_null(text);
    json_decref(root);
    free(mw_write_text(dir, "tokenizer.json", text));
    free(text);
    free(mw_write_text(dir, "tokenizer_config.json",
                       "{\"bos_token\": null, \"eos_token\": \"<|end|>\", "
                       "\"pad_token\": {\"content\": \"<A>\"}, \"chat_template\": \"{{ x }}\"}"));
    ar_tokenizer *t = must_open(dir, NULL);
    assert_int_equal(ar_tokenizer_n_tokens(t), TINY_N);
    assert_int_equal(ar_tokenizer_special(t, AR_TOKEN_BOS), -1);
    assert_int_equal(ar_tokenizer_special(t, AR_TOKEN_EOS), TINY_END);
    assert_int_equal(ar_tokenizer_special(t, AR_TOKEN_PAD), TINY_A);
    assert_string_equal(ar_tokenizer_chat_template(t), "{{ x }}");
    ar_tokenizer_free(t);
    /* A directory without tokenizer.json. */
    char *empty = mw_temp_subdir("tokdir-empty");
    t = NULL;
    ar_status st = ar_tokenizer_open(empty, NULL, &t);
    expect_failed(st, t, AR_ERR_NOT_FOUND, "tokenizer.json");
    free(empty);
    free(dir);
}

static void test_gguf_errors(void **state) {
    (void)state;
    tiny_gguf v = {.model = "llama"};
    expect_gguf_fails(&v, AR_ERR_UNSUPPORTED, "'llama'");
    v = (tiny_gguf){.pre = "default"};
    expect_gguf_fails(&v, AR_ERR_UNSUPPORTED, "'default'");
    v = (tiny_gguf){.omit = "tokenizer.ggml.pre"};
    expect_gguf_fails(&v, AR_ERR_UNSUPPORTED, "tokenizer.ggml.pre");
    v = (tiny_gguf){.omit = "tokenizer.ggml.merges"};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "tokenizer.ggml.merges");
    /* A merge of a token that does not exist: named by its index. */
    v = (tiny_gguf){.merge = "a zz"};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "merge 2");
    /* A merge whose result is not a token. */
    v = (tiny_gguf){.merge = "b c"};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "merge 2");
    v = (tiny_gguf){.merge = "ab"};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "tokenizer.ggml.merges[2]");
    v = (tiny_gguf){.merge = "a b c"};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "tokenizer.ggml.merges[2]");
    /* A raw space is not in the byte-level alphabet (it is written "Ġ"). */
    v = (tiny_gguf){.token = TINY_XYZ, .token_text = "x yz"};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "token 258");
    v = (tiny_gguf){.token = TINY_XYZ, .token_text = "\xE4\xBD\xA0"};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "token 258");
    /* Byte 'A' loses its token. */
    v = (tiny_gguf){.token = 'A', .token_text = "AA"};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "0x41");
    /* Two tokens with one text. */
    v = (tiny_gguf){.token = TINY_XYZ, .token_text = "ab"};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "the same text");
    v = (tiny_gguf){.token = TINY_XYZ, .token_text = ""};
    expect_gguf_fails(&v, AR_ERR_FORMAT, "token 258");
    v = (tiny_gguf){.omit = "tokenizer.ggml.model"};
    expect_gguf_fails(&v, AR_ERR_UNSUPPORTED, "tokenizer.ggml.model");
}

static void test_json_errors(void **state) {
    (void)state;
    json_t *r = tiny_json();
    json_object_set_new(json_object_get(r, "model"), "type", json_string("WordPiece"));
    expect_json_fails(r, AR_ERR_UNSUPPORTED, "'WordPiece'");

    r = tiny_json();
    json_object_set_new(r, "normalizer", json_pack("{s:s}", "type", "NFKC"));
    expect_json_fails(r, AR_ERR_UNSUPPORTED, "normalizer");
    r = tiny_json();
    json_object_set_new(r, "normalizer", json_null());
    expect_json_fails(r, AR_ERR_UNSUPPORTED, "normalizer");

    /* GPT-2's split regex instead of Qwen2's. */
    r = tiny_json();
    json_t *split =
        json_array_get(json_object_get(json_object_get(r, "pre_tokenizer"), "pretokenizers"), 0);
    json_object_set_new(json_object_get(split, "pattern"), "Regex",
                        json_string("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| "
                                    "?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"));
    expect_json_fails(r, AR_ERR_UNSUPPORTED, "pre_tokenizer");
    r = tiny_json();
    json_t *bl =
        json_array_get(json_object_get(json_object_get(r, "pre_tokenizer"), "pretokenizers"), 1);
    json_object_set_new(bl, "add_prefix_space", json_true());
    expect_json_fails(r, AR_ERR_UNSUPPORTED, "pre_tokenizer");

    r = tiny_json();
    json_object_set_new(json_object_get(r, "model"), "byte_fallback", json_true());
    expect_json_fails(r, AR_ERR_UNSUPPORTED, "byte_fallback");

    /* Added-token options the tokenizer does not implement. */
    static const char *const options[] = {"lstrip", "rstrip", "single_word", "normalized"};
    for (size_t i = 0; i < N_OF(options); i++) {
        r = tiny_json();
        json_object_set_new(json_array_get(json_object_get(r, "added_tokens"), 1), options[i],
                            json_true());
        expect_json_fails(r, AR_ERR_UNSUPPORTED, "'<A><B>'");
    }

    /* Two texts with one id; an added token on a vocabulary id. */
    r = tiny_json();
    json_object_set_new(json_object_get(json_object_get(r, "model"), "vocab"), "zz",
                        json_integer(5));
    expect_json_fails(r, AR_ERR_FORMAT, "token id 5 is used twice");
    r = tiny_json();
    json_array_append_new(json_object_get(r, "added_tokens"), added_token(7, "<X>", true));
    expect_json_fails(r, AR_ERR_FORMAT, "added token id 7");
    r = tiny_json();
    json_object_set_new(json_object_get(json_object_get(r, "model"), "vocab"), "zz",
                        json_integer(-3));
    expect_json_fails(r, AR_ERR_FORMAT, "model.vocab[\"zz\"]");

    r = tiny_json();
    json_object_del(json_object_get(r, "model"), "merges");
    expect_json_fails(r, AR_ERR_FORMAT, "model.merges");
    r = tiny_json();
    json_array_append_new(json_object_get(json_object_get(r, "model"), "merges"),
                          json_pack("[s, s]", "a", "zz"));
    expect_json_fails(r, AR_ERR_FORMAT, "merge 2");
    r = tiny_json();
    json_array_append_new(json_object_get(json_object_get(r, "model"), "merges"),
                          json_string("a b c"));
    expect_json_fails(r, AR_ERR_FORMAT, "model.merges[2]");
    r = tiny_json();
    json_object_del(json_object_get(r, "model"), "vocab");
    expect_json_fails(r, AR_ERR_FORMAT, "model.vocab");
    r = tiny_json();
    json_object_set_new(json_object_get(json_object_get(r, "model"), "vocab"), "x y",
                        json_integer(TINY_N));
    expect_json_fails(r, AR_ERR_FORMAT, "token 263");

    /* Not JSON at all; no such file. */
    ar_tokenizer *t = NULL;
    const char *path = ar_test_write_temp(1, "garbage.json", "{\"model\": [", 11);
    ar_status st = ar_tokenizer_open(path, NULL, &t);
    assert_int_not_equal(st, AR_OK);
    expect_failed(st, t, st, "garbage.json");
    t = NULL;
    st = ar_tokenizer_open("/nonexistent/archrouter/tokenizer.json", NULL, &t);
    assert_int_not_equal(st, AR_OK);
    expect_failed(st, t, st, "/nonexistent/archrouter/tokenizer.json");
}

/* Model options that change the ids (a subword prefix, a word suffix) must be refused,
 * not ignored. */
static void test_json_unsupported_bpe_options(void **state) {
    (void)state;
    json_t *r = tiny_json();
    json_object_set_new(json_object_get(r, "model"), "continuing_subword_prefix",
                        json_string("##"));
    expect_json_fails(r, AR_ERR_UNSUPPORTED, "continuing_subword_prefix");
    r = tiny_json();
    json_object_set_new(json_object_get(r, "model"), "end_of_word_suffix", json_string("</w>"));
    expect_json_fails(r, AR_ERR_UNSUPPORTED, "end_of_word_suffix");
}

/* A failed handle has no vocabulary (ar_tokenizer_n_tokens() says 0), so every id is out
 * of range and no text is found, whatever stage the open failed at. */
static const tiny_gguf failed_variants[] = {
    {.token = TINY_XYZ, .token_text = "x yz"}, /* fails while reading the token texts */
    {.merge = "a zz"},                         /* fails while reading the merges */
};

static void test_failed_handle_token_bytes(void **state) {
    (void)state;
    for (size_t i = 0; i < N_OF(failed_variants); i++) {
        ar_tokenizer *t = NULL;
        assert_int_equal(tiny_gguf_open(&failed_variants[i], NULL, &t), AR_ERR_FORMAT);
        size_t len = 0;
        assert_int_equal(ar_tokenizer_n_tokens(t), 0);
        assert_null(ar_token_bytes(t, 0, &len));
        assert_null(ar_token_bytes(t, TINY_N - 1, &len));
        ar_tokenizer_free(t);
    }
}

static void test_failed_handle_find(void **state) {
    (void)state;
    for (size_t i = 0; i < N_OF(failed_variants); i++) {
        ar_tokenizer *t = NULL;
        assert_int_equal(tiny_gguf_open(&failed_variants[i], NULL, &t), AR_ERR_FORMAT);
        assert_int_equal(ar_tokenizer_find(t, "a"), -1);
        assert_int_equal(ar_tokenizer_find(t, "<|end|>"), -1);
        ar_tokenizer_free(t);
    }
}

/* ---- 9. pre-tokenizer edge cases ------------------------------------------------------ */

/* The text splits into exactly these pieces: every piece boundary is a token boundary,
 * and the ids are those of the pieces tokenized one by one. Pieces follow the Qwen2
 * regex (checked with Python's `regex` and with Hugging Face tokenizers). */
static void expect_pieces(const ar_tokenizer *t, const char *text, const char *const *pieces,
                          size_t n_pieces) {
    int32_t ids[256], cat[256];
    size_t n = enc_str(t, text, 0, ids, N_OF(ids)), n_cat = 0, at = 0;
    for (size_t p = 0; p < n_pieces; p++) {
        assert_memory_equal(text + at, pieces[p], strlen(pieces[p]));
        at += strlen(pieces[p]);
        n_cat += enc_str(t, pieces[p], 0, cat + n_cat, N_OF(cat) - n_cat);
    }
    assert_int_equal(at, strlen(text));
    assert_ids(ids, n, cat, n_cat, text);
    /* Token boundaries, from the token bytes, include every piece boundary. */
    size_t bytes = 0, piece = 0, piece_end = strlen(pieces[0]);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        assert_non_null(ar_token_bytes(t, ids[i], &len));
        bytes += len;
        if (bytes > piece_end) fail_msg("\"%s\": token %zu crosses piece %zu", text, i, piece);
        if (bytes == piece_end && ++piece < n_pieces) piece_end += strlen(pieces[piece]);
    }
    assert_int_equal(bytes, strlen(text));
}

static void test_pretokenizer(void **state) {
    (void)state;
    const ar_tokenizer *t = qwen();
#define PIECES(text, ...)                                                                          \
    do {                                                                                           \
        static const char *const p_[] = {__VA_ARGS__};                                             \
        expect_pieces(t, text, p_, N_OF(p_));                                                      \
    } while (0)
    PIECES("  hello", " ", " hello");
    PIECES("hello world", "hello", " world");
    PIECES("HE'S", "HE", "'S");
    PIECES("I'LL GO", "I", "'LL", " GO");
    PIECES("we'Re", "we", "'Re");
    PIECES("don't", "don", "'t");
    PIECES("'sx", "'s", "x");
    PIECES("x'", "x", "'");
    PIECES("\r\n\r\n", "\r\n\r\n");
    PIECES("hello   ", "hello", "   ");
    PIECES("a   b", "a", "  ", " b");
    PIECES("\t\tfoo", "\t", "\tfoo");
    PIECES("12345", "1", "2", "3", "4", "5");
    PIECES("x = 1;\n\n", "x", " =", " ", "1", ";\n\n");
    PIECES("  \n  x", "  \n", " ", " x");
    PIECES("foo\n \n", "foo", "\n \n");
    PIECES("!!!\n\nabc", "!!!\n\n", "abc");
    PIECES(" ?!", " ?!");
    PIECES("$100", "$", "1", "0", "0");
    PIECES("(x)", "(x", ")");
    PIECES("a\xC2\xA0"
           "b",
           "a",
           "\xC2\xA0"
           "b");                              /* NBSP is \s, not \p{L} */
    PIECES("\xE3\x80\x80x", "\xE3\x80\x80x"); /* so is U+3000 */
    PIECES("HE\xCA\xBCS", "HE\xCA\xBCS");     /* U+02BC is a letter (Lm) */
#undef PIECES
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_special_chat_markup),
        cmocka_unit_test(test_special_no_injection),
        cmocka_unit_test(test_special_positions),
        cmocka_unit_test(test_special_leftmost_longest),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_max_input_bytes),
        cmocka_unit_test(test_buffer_too_small),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_decode_round_trip),
        cmocka_unit_test(test_decode_split_character),
        cmocka_unit_test(test_decode_buffers),
        cmocka_unit_test(test_token_text_and_bytes),
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_find_unused_tokens),
        cmocka_unit_test(test_nfc),
        cmocka_unit_test(test_cache_sizes),
        cmocka_unit_test(test_cache_threads),
        cmocka_unit_test(test_tiny_vocabulary),
        cmocka_unit_test(test_ignore_merges),
        cmocka_unit_test(test_json_directory),
        cmocka_unit_test(test_gguf_errors),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_json_unsupported_bpe_options),
        cmocka_unit_test(test_pretokenizer),
        /* Last: when they fail they may take the process down (a crash, a heap overrun). */
        cmocka_unit_test(test_failed_handle_token_bytes),
        cmocka_unit_test(test_failed_handle_find),
        cmocka_unit_test(test_cache_smaller_than_an_entry),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
