/*
 * fuzz_model.c - contract checks and the model driver shared by the fuzz targets (see
 * fuzz_model.h).
 */
#include "fuzz_model.h"
#include "tokenizer/bpe.h"

#include <jansson.h>
#include <utf8proc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Config 0: tied embeddings, head_dim derived (8 / 2 = 4), GQA 2:1.
 * Config 1: untied lm_head, explicit head_dim 6 (so q_proj is [12, 8], not square), two
 *           layers, eos_token_id as a list, and fields the loader must ignore or accept.
 * Config 2: the shape of the reference checkpoint models/qwen2-tiny-q (hidden 256, FFN 512,
 *           vocab 512, untied), so that its model.safetensors loads completely when
 *           scripts/fuzz.sh adds it as a seed. */
/* clang-format off */
const fuzz_st_config fuzz_st_configs[FUZZ_ST_N_CONFIGS] = {
    {
        .json = "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\", "
                "\"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1, "
                "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"vocab_size\": 16, "
                "\"max_position_embeddings\": 64, \"rope_theta\": 1000000.0, "
                "\"rms_norm_eps\": 1e-06, \"hidden_act\": \"silu\", "
                "\"tie_word_embeddings\": true, \"bos_token_id\": 0, \"eos_token_id\": 1, "
                "\"torch_dtype\": \"float32\"}",
        .n_layers = 1, .n_embd = 8, .n_heads = 2, .n_kv_heads = 1, .head_dim = 4, .n_ff = 16,
        .n_vocab = 16, .tied = true,
    },
    {
        .json = "{\"model_type\": \"qwen2\", \"hidden_size\": 8, \"intermediate_size\": 12, "
                "\"num_hidden_layers\": 2, \"num_attention_heads\": 2, "
                "\"num_key_value_heads\": 1, \"head_dim\": 6, \"vocab_size\": 10, "
                "\"rope_theta\": 10000, \"rms_norm_eps\": 1e-05, \"hidden_act\": \"silu\", "
                "\"tie_word_embeddings\": false, \"use_sliding_window\": false, "
                "\"sliding_window\": null, \"rope_scaling\": null, \"pad_token_id\": 3, "
                "\"eos_token_id\": [2, 1], \"name\": \"fuzz \\\"tiny\\\" \\u00e9\\n\", "
                "\"quantization_config\": {\"bits\": [4, 8], \"skip\": []}}",
        .n_layers = 2, .n_embd = 8, .n_heads = 2, .n_kv_heads = 1, .head_dim = 6, .n_ff = 12,
        .n_vocab = 10, .tied = false,
    },
    {
        .json = "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\", "
                "\"hidden_size\": 256, \"intermediate_size\": 512, \"num_hidden_layers\": 2, "
                "\"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"vocab_size\": 512, "
                "\"max_position_embeddings\": 32768, \"rope_theta\": 1000000.0, "
                "\"rms_norm_eps\": 1e-06, \"hidden_act\": \"silu\", "
                "\"tie_word_embeddings\": false, \"use_sliding_window\": false, "
                "\"bos_token_id\": 151643, \"eos_token_id\": 151645, "
                "\"torch_dtype\": \"float16\", \"rope_scaling\": null}",
        .n_layers = 2, .n_embd = 256, .n_heads = 2, .n_kv_heads = 1, .head_dim = 128,
        .n_ff = 512, .n_vocab = 512, .tied = false,
    },
};
/* clang-format on */

_Noreturn void fuzz_fail(const char *file, int line, const char *what) {
    fprintf(stderr, "fuzz check failed: %s:%d: %s\n", file, line, what);
    abort();
}

void fuzz_check_error(ar_status st, const char *msg) {
    FUZZ_CHECK(st != AR_OK && strcmp(ar_strerror(st), "unknown status") != 0);
    FUZZ_CHECK(st != AR_ERR_INTERNAL); /* "a bug in archrouter" */
    FUZZ_CHECK(msg != NULL && msg[0] != 0);
}

bool fuzz_to_f32(const ar_type_traits *tt, const void *data, uint64_t n, uint64_t *budget) {
    if (n > *budget || n == 0) return false;
    *budget -= n;
    float *dst = malloc((size_t)n * sizeof *dst);
    FUZZ_CHECK(dst != NULL);
    tt->to_float(data, dst, (int64_t)n);
    free(dst);
    return true;
}

/* ---- model queries ------------------------------------------------------------------ */

static volatile uint8_t sink;

static void check_str(const char *s) {
    FUZZ_CHECK(s != NULL);
    (void)strlen(s); /* reads up to the NUL under ASan */
}

static void check_info(const ar_model *m, const char *format, size_t size, ar_model_info *in) {
    FUZZ_CHECK(ar_model_get_info(m, in) == AR_OK);
    check_str(in->architecture);
    check_str(in->name);
    check_str(in->file_type);
    check_str(in->tokenizer_model);
    check_str(in->tokenizer_pre);
    FUZZ_CHECK(in->format != NULL && strcmp(in->format, format) == 0);
    FUZZ_CHECK(strcmp(in->architecture, "qwen2") == 0);
    FUZZ_CHECK(in->n_tensors == ar_model_n_tensors(m) && in->n_tensors >= 0);
    FUZZ_CHECK(in->file_bytes == size && in->n_files == 1);
    FUZZ_CHECK(!in->vocab_only || in->n_tensors == 0);
    FUZZ_CHECK(in->n_layers >= 1 && in->n_heads >= 1 && in->n_kv_heads >= 1);
    FUZZ_CHECK(in->head_dim >= 1 && in->n_embd >= 1 && in->n_ff >= 1);
    FUZZ_CHECK(in->vocab_only || in->n_vocab >= 1);
}

/* Token texts, and special ids inside the vocabulary. */
static void check_tokens(const ar_model *m, const ar_model_info *in) {
    FUZZ_CHECK(ar_model_token_text(m, -1) == NULL);
    FUZZ_CHECK(ar_model_token_text(m, INT32_MAX) == NULL);
    if (in->n_tokens < 0) {
        FUZZ_CHECK(ar_model_token_text(m, 0) == NULL);
        return;
    }
    FUZZ_CHECK(in->n_tokens <= in->n_vocab || in->vocab_only);
    FUZZ_CHECK(ar_model_token_text(m, in->n_tokens) == NULL);
    int32_t ids[] = {0, 1, in->n_tokens / 2, in->n_tokens - 1, in->bos_id, in->eos_id, in->pad_id};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] >= 0 && ids[i] < in->n_tokens) check_str(ar_model_token_text(m, ids[i]));
    if (strcmp(in->format, "gguf") == 0) {
        int32_t special[] = {in->bos_id, in->eos_id, in->pad_id};
        for (size_t i = 0; i < 3; i++) FUZZ_CHECK(special[i] >= -1 && special[i] < in->n_tokens);
    }
}

static void check_tensor(const ar_model *m, int32_t i, size_t size, uint64_t *budget) {
    ar_tensor_info ti;
    FUZZ_CHECK(ar_model_tensor_info(m, i, &ti) == AR_OK);
    check_str(ti.name);
    FUZZ_CHECK(ar_model_tensor_find(m, ti.name) == i);
    FUZZ_CHECK(ti.n_dims >= 1 && ti.n_dims <= 4);
    uint64_t n = 1;
    for (int d = 0; d < 4; d++) {
        FUZZ_CHECK(ti.ne[d] >= 0 && (d < ti.n_dims || ti.ne[d] == 1));
        n *= (uint64_t)ti.ne[d]; /* unsigned: a wrap shows as a mismatch below */
    }
    FUZZ_CHECK(n == ti.n_elements);
    const ar_type_traits *tt = ar_type_traits_get((uint32_t)ti.type);
    FUZZ_CHECK(tt != NULL && ar_type_name(ti.type) != NULL);
    FUZZ_CHECK(ti.file_offset <= size && ti.n_bytes <= size - ti.file_offset);
    uint64_t row = 0;
    if (ti.ne[0] > 0) {
        FUZZ_CHECK(ar_type_row_bytes(tt, (uint64_t)ti.ne[0], &row));
        FUZZ_CHECK(row * (ti.n_elements / (uint64_t)ti.ne[0]) == ti.n_bytes);
    } else {
        FUZZ_CHECK(ti.n_bytes == 0);
    }
    if (ti.n_elements == 0 || ti.n_elements > *budget) return;
    *budget -= ti.n_elements;
    float *dst = malloc((size_t)ti.n_elements * sizeof *dst);
    FUZZ_CHECK(dst != NULL);
    FUZZ_CHECK(ar_model_tensor_to_f32(m, i, dst, ti.n_elements - 1) == AR_ERR_INVALID_ARG);
    FUZZ_CHECK(ar_model_tensor_to_f32(m, i, dst, ti.n_elements) == AR_OK);
    free(dst);
}

static void check_tensors(const ar_model *m, int32_t n, size_t size) {
    uint64_t budget = FUZZ_MAX_ELEMENTS;
    for (int32_t i = 0; i < n; i++) check_tensor(m, i, size, &budget);
    ar_tensor_info ti;
    float f;
    FUZZ_CHECK(ar_model_tensor_info(m, -1, &ti) == AR_ERR_INVALID_ARG);
    FUZZ_CHECK(ar_model_tensor_info(m, n, &ti) == AR_ERR_INVALID_ARG);
    FUZZ_CHECK(ar_model_tensor_to_f32(m, n, &f, 1) == AR_ERR_INVALID_ARG);
    FUZZ_CHECK(ar_model_tensor_find(m, "") == -1);
}

/* Entry i renders like snprintf: the same length whatever the buffer, a prefix of the full
 * text in a small buffer, nothing written into a zero-size one. Buffers are malloc'd at
 * their exact size so ASan sees a write past them. */
static void check_meta_entry(const ar_model *m, int32_t i, bool lookup) {
    const char *key = ar_model_meta_key(m, i);
    check_str(key);
    int64_t len = ar_model_meta_value_text(m, i, NULL, 0);
    FUZZ_CHECK(len >= 0);
    char guard = 'X';
    FUZZ_CHECK(ar_model_meta_value_text(m, i, &guard, 0) == len && guard == 'X');
    char *full = malloc((size_t)len + 1);
    FUZZ_CHECK(full != NULL);
    FUZZ_CHECK(ar_model_meta_value_text(m, i, full, (size_t)len + 1) == len);
    FUZZ_CHECK(strlen(full) == (size_t)len);
    for (size_t cap = 1; cap <= 6; cap++) {
        char *small = malloc(cap);
        FUZZ_CHECK(small != NULL);
        FUZZ_CHECK(ar_model_meta_value_text(m, i, small, cap) == len);
        size_t want = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
        FUZZ_CHECK(strlen(small) == want && memcmp(small, full, want) == 0);
        free(small);
    }
    free(full);
    const char *s = lookup ? ar_model_meta_str(m, key) : NULL;
    if (s) check_str(s);
}

static void check_meta(const ar_model *m) {
    int32_t n = ar_model_meta_count(m);
    FUZZ_CHECK(n >= 0);
    for (int32_t i = 0; i < n; i++) check_meta_entry(m, i, i < FUZZ_MAX_LOOKUPS);
    char buf[4];
    FUZZ_CHECK(ar_model_meta_key(m, -1) == NULL && ar_model_meta_key(m, n) == NULL);
    FUZZ_CHECK(ar_model_meta_value_text(m, -1, buf, sizeof buf) == -1);
    FUZZ_CHECK(ar_model_meta_value_text(m, n, buf, sizeof buf) == -1);
    FUZZ_CHECK(ar_model_meta_str(m, "\xff") == NULL); /* keys are UTF-8: never this one */
}

/* ---- tokenizer ----------------------------------------------------------------------- */

ar_tokenizer_params fuzz_tokenizer_params(void) {
    ar_tokenizer_params p = ar_tokenizer_default_params();
    p.cache_bytes = 64 << 10;
    return p;
}

/* The vocabulary queries: out-of-range ids give NULL, texts are found again, special ids
 * are tokens. */
static void check_vocab(const ar_tokenizer *tok, int32_t n) {
    size_t len;
    FUZZ_CHECK(ar_token_bytes(tok, -1, &len) == NULL && ar_token_bytes(tok, n, &len) == NULL);
    FUZZ_CHECK(ar_token_text(tok, -1) == NULL && ar_token_text(tok, n) == NULL);
    int32_t probe[] = {0, 1, n / 2, n - 1};
    for (size_t i = 0; i < sizeof probe / sizeof probe[0]; i++) {
        if (probe[i] < 0 || probe[i] >= n) continue;
        const char *bytes = ar_token_bytes(tok, probe[i], &len);
        FUZZ_CHECK(bytes != NULL);
        if (len) sink ^= (uint8_t)(bytes[0] ^ bytes[len - 1]);
        const char *text = ar_token_text(tok, probe[i]);
        check_str(text);
        int32_t found = ar_tokenizer_find(tok, text);
        FUZZ_CHECK(found >= -1 && found < n);
        if (found >= 0) FUZZ_CHECK(strcmp(ar_token_text(tok, found), text) == 0);
    }
    for (int w = AR_TOKEN_BOS; w <= AR_TOKEN_PAD; w++) {
        int32_t id = ar_tokenizer_special(tok, (ar_special_token)w);
        FUZZ_CHECK(id >= -1 && id < n);
    }
    const char *tmpl = ar_tokenizer_chat_template(tok);
    if (tmpl) check_str(tmpl);
}

typedef struct fuzz_text {
    const char *s;
    bool valid; /* UTF-8 */
    bool nfc;   /* NFC already: decoding gives the text back */
} fuzz_text;

static const fuzz_text fuzz_texts[] = {
    {"Hello world, the quick brown fox's 12345 jumps!\n\n  over\t\ttabs I'M WE'LL", true, true},
    {"<|im_start|>user\nwhat's up?<|im_end|>\n<|im_start|>assistant\n<|endoftext|>", true, true},
    {"\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x99\x82"
     "\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd \xc3\x9cn\xc3\xaf"
     "c\xc3\xb6"
     "d\xc3\xa9 \xd9\xa3\xe0\xa5\xa8",
     true, true},
    {"e\xcc\x81 A\xcc\x8a combining \xe1\x84\x80\xe1\x85\xa1", true, false},
    {"   \r\n\r\n  x  \xc2\xa0\xe3\x80\x80 ", true, true},
    {"bad \xff\xfe utf8 \xc0\xaf \xed\xa0\x80 end \xe4\xbd", false, false},
    {"", true, true},
};

/* Encode text t with `flags` and check the ids; returns the ids' count. */
static size_t check_encode(const ar_tokenizer *tok, int32_t n, const fuzz_text *t, uint32_t flags,
                           int32_t *ids, size_t cap) {
    size_t len = strlen(t->s), n_ids = 0;
    ar_status st = ar_tokenize(tok, t->s, len, flags, ids, cap, &n_ids);
    if (!t->valid && !(flags & AR_TOKENIZE_REPLACE_INVALID)) {
        FUZZ_CHECK(st == AR_ERR_INVALID_INPUT && n_ids < len);
        return 0;
    }
    if (st == AR_ERR_BUFFER_TOO_SMALL) {
        FUZZ_CHECK(n_ids > cap);
        return 0;
    }
    FUZZ_CHECK(st == AR_OK && n_ids <= cap);
    for (size_t i = 0; i < n_ids; i++) FUZZ_CHECK(ids[i] >= 0 && ids[i] < n);
    char buf[1024];
    size_t out = 0;
    st = ar_detokenize(tok, ids, n_ids, buf, sizeof buf, &out);
    FUZZ_CHECK(st == AR_OK || (st == AR_ERR_BUFFER_TOO_SMALL && out > sizeof buf));
    if (st == AR_OK && t->valid && t->nfc) FUZZ_CHECK(out == len && memcmp(buf, t->s, len) == 0);
    return n_ids;
}

void fuzz_check_tokenizer(ar_status st, ar_tokenizer *tok) {
    if (st != AR_OK) {
        FUZZ_CHECK(tok != NULL || st == AR_ERR_NOMEM);
        fuzz_check_error(st, ar_tokenizer_errmsg(tok));
        FUZZ_CHECK(ar_tokenizer_n_tokens(tok) == 0);
        ar_tokenizer_free(tok);
        return;
    }
    FUZZ_CHECK(tok != NULL);
    int32_t n = ar_tokenizer_n_tokens(tok);
    FUZZ_CHECK(n >= 1);
    check_vocab(tok, n);
    static const uint32_t flags[] = {0, AR_TOKENIZE_SPECIAL,
                                     AR_TOKENIZE_SPECIAL | AR_TOKENIZE_REPLACE_INVALID};
    int32_t ids[512], again[512];
    for (size_t i = 0; i < sizeof fuzz_texts / sizeof fuzz_texts[0]; i++)
        for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
            size_t k = check_encode(tok, n, &fuzz_texts[i], flags[f], ids, 512);
            size_t k2 = check_encode(tok, n, &fuzz_texts[i], flags[f], again, 512); /* cached */
            FUZZ_CHECK(k == k2 && memcmp(ids, again, k * sizeof *ids) == 0);
        }
    ar_tokenizer_free(tok);
}

/* ---- a synthetic tokenizer.json ---------------------------------------------------------- */

static const char qwen2_split[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

char *fuzz_tokenizer_json(size_t *len) {
    static const char *const merges[][2] = {
        {"\xc4\xa0", "t"},
        {"h", "e"},
        {"\xc4\xa0t", "he"},
        {"i", "n"},
        {"\xc4\xa0", "a"},
        {"e", "r"},
        {"\xc4\xa0", "\xc4\xa0"},
        {"\xc4\xa0\xc4\xa0", "\xc4\xa0\xc4\xa0"},
        {"'", "s"},
    };
    static const char *const added[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                        "<tool_call>", "</tool_call>"};
    json_t *vocab = json_object(), *jm = json_array(), *ja = json_array();
    int id = 0;
    for (int b = 0; b < 256; b++) {
        char s[8] = {0};
        utf8proc_encode_char((utf8proc_int32_t)ar_bytelevel_char((uint8_t)b), (uint8_t *)s);
        json_object_set_new(vocab, s, json_integer(id++));
    }
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) {
        char both[32];
        snprintf(both, sizeof both, "%s%s", merges[i][0], merges[i][1]);
        if (!json_object_get(vocab, both)) json_object_set_new(vocab, both, json_integer(id++));
        json_array_append_new(jm, json_pack("[ss]", merges[i][0], merges[i][1]));
    }
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++)
        json_array_append_new(ja, json_pack("{s:i,s:s,s:b,s:b,s:b,s:b,s:b}", "id", id++, "content",
                                            added[i], "special", i < 3, "lstrip", 0, "rstrip", 0,
                                            "single_word", 0, "normalized", 0));
    json_t *root = json_pack(
        "{s:o,s:{s:s},s:{s:s,s:[{s:s,s:{s:s},s:s,s:b},{s:s,s:b,s:b,s:b}]},s:{s:s},"
        "s:{s:s,s:n,s:b,s:b,s:o,s:o}}",
        "added_tokens", ja, "normalizer", "type", "NFC", "pre_tokenizer", "type", "Sequence",
        "pretokenizers", "type", "Split", "pattern", "Regex", qwen2_split, "behavior", "Isolated",
        "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 0, "use_regex", 0,
        "decoder", "type", "ByteLevel", "model", "type", "BPE", "dropout", "byte_fallback", 0,
        "ignore_merges", 0, "vocab", vocab, "merges", jm);
    if (!root) fuzz_fail(__FILE__, __LINE__, "json_pack of the synthetic tokenizer");
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!s) fuzz_fail(__FILE__, __LINE__, "json_dumps");
    *len = strlen(s);
    return s;
}

/* ---- entry ---------------------------------------------------------------------------- */

void fuzz_check_model(ar_status st, ar_model *m, const char *format, size_t size) {
    if (st != AR_OK) {
        FUZZ_CHECK(m != NULL || st == AR_ERR_NOMEM);
        fuzz_check_error(st, ar_model_errmsg(m));
        ar_model_info in;
        FUZZ_CHECK(ar_model_get_info(m, &in) != AR_OK);
        ar_model_free(m);
        return;
    }
    FUZZ_CHECK(m != NULL);
    FUZZ_CHECK(ar_model_errmsg(m)[0] == 0);
    ar_model_info in;
    check_info(m, format, size, &in);
    check_tokens(m, &in);
    check_tensors(m, in.n_tensors, size);
    check_meta(m);
    if (strcmp(format, "gguf") == 0) {
        ar_tokenizer_params tp = fuzz_tokenizer_params();
        ar_tokenizer *tok = NULL;
        ar_status ts = ar_tokenizer_from_model(m, &tp, &tok);
        fuzz_check_tokenizer(ts, tok);
    }
    ar_model_free(m);
}
