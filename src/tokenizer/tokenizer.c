/*
 * tokenizer.c - ar_tokenizer: loading the Qwen2 byte-level BPE tokenizer from GGUF metadata
 * or tokenizer.json, and encoding/decoding text (public API in include/archrouter.h).
 *
 * Encoding, as the reference tokenizer does it:
 *   1. (AR_TOKENIZE_SPECIAL only) split the text on added tokens, leftmost-longest match;
 *      each added token becomes its id, the text between goes on;
 *   2. NFC-normalize each remaining segment (skipped when every code point is below
 *      U+0300, where NFC changes nothing);
 *   3. split the segment with the Qwen2 pre-tokenizer (pretok.c);
 *   4. encode each piece with byte-level BPE (bpe.c).
 * Both loaders reduce their source to the same builder: token texts with a BPE/added flag,
 * the merge list, added tokens, special ids and the chat template.
 */
#include "archrouter.h"

#include "base/err.h"
#include "base/mapfile.h"
#include "base/utf8.h"
#include "model/hfdir.h"
#include "model/model.h"
#include "tokenizer/bpe.h"
#include "tokenizer/cache.h"
#include "tokenizer/pretok.h"
#include "tokenizer/tokenizer.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#define DEFAULT_MAX_INPUT (16u << 20)

/* The only pre-tokenizer regex implemented (pretok.c), as tokenizer.json writes it. */
static const char qwen2_regex[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

typedef struct added_token {
    int32_t id;
    uint32_t len;
    const uint8_t *bytes; /* into bpe.raw */
} added_token;

struct ar_tokenizer {
    ar_err err;
    bool failed;
    ar_tokenizer_params params;
    ar_bpe bpe;
    int32_t n_added;
    added_token *added; /* longest first */
    uint8_t added_first[256];
    bool ignore_merges;
    int32_t special[3];
    char *chat_template;
    ar_tok_cache *cache; /* pre-token -> ids; NULL when disabled */
};

ar_tokenizer_params ar_tokenizer_default_params(void) {
    ar_tokenizer_params p = {.max_input_bytes = DEFAULT_MAX_INPUT, .cache_bytes = 4u << 20};
    return p;
}

/* ---- building from any source ------------------------------------------------------- */

/* What a loader collects: n token texts (pointing into the source) with their kind. */
typedef struct builder {
    int32_t n;
    const char **texts;
    uint32_t *lens;
    bool *bpe;   /* byte-level BPE token */
    bool *added; /* matched as a whole in AR_TOKENIZE_SPECIAL mode */
} builder;

static ar_status builder_init(builder *b, int32_t n, ar_err *err) {
    memset(b, 0, sizeof *b);
    b->n = n;
    size_t m = n ? (size_t)n : 1;
    b->texts = calloc(m, sizeof *b->texts);
    b->lens = calloc(m, sizeof *b->lens);
    b->bpe = calloc(m, sizeof *b->bpe);
    b->added = calloc(m, sizeof *b->added);
    if (!b->texts || !b->lens || !b->bpe || !b->added)
        return ar_errf(err, AR_ERR_NOMEM, "out of memory for the vocabulary");
    return AR_OK;
}

static void builder_free(builder *b) {
    free(b->texts);
    free(b->lens);
    free(b->bpe);
    free(b->added);
}

/* The raw bytes of token id (valid once the vocabulary is built, even mid-load). */
static const char *raw_bytes(const ar_tokenizer *t, int32_t id, size_t *len) {
    if (len) *len = t->bpe.raw_off[id + 1] - t->bpe.raw_off[id];
    return (const char *)t->bpe.raw + t->bpe.raw_off[id];
}

/* The id whose vocabulary text is `text`: added tokens, then BPE tokens (hashed), then the
 * rest (unused and control tokens, few). Needs the vocabulary built. */
static int32_t find_token(const ar_tokenizer *t, const char *text) {
    for (int32_t i = 0; i < t->n_added; i++)
        if (strcmp(t->bpe.text + t->bpe.text_off[t->added[i].id], text) == 0) return t->added[i].id;
    int32_t id = ar_bpe_find_text(&t->bpe, text, strlen(text));
    for (int32_t i = 0; id < 0 && i < t->bpe.n_tokens; i++)
        if (!t->bpe.is_bpe[i] && strcmp(t->bpe.text + t->bpe.text_off[i], text) == 0) id = i;
    return id;
}

static int cmp_added(const void *a, const void *b) {
    const added_token *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Vocabulary texts, raw bytes, and the added-token matcher from a filled builder. */
static ar_status build(ar_tokenizer *t, const builder *b, ar_err *err) {
    for (int32_t i = 0; i < b->n; i++)
        if (!b->texts[i]) b->texts[i] = ""; /* ids the source skipped: empty, never matched */
    ar_status rc = ar_bpe_init(&t->bpe, b->n, b->texts, b->lens, b->bpe, err);
    if (rc == AR_OK) rc = ar_bpe_check_bytes(&t->bpe, err);
    if (rc != AR_OK) return rc;
    t->added = calloc((size_t)b->n ? (size_t)b->n : 1, sizeof *t->added);
    if (!t->added) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < b->n; i++) {
        if (!b->added[i] || b->lens[i] == 0) continue;
        size_t len = 0;
        const char *raw = raw_bytes(t, i, &len);
        t->added[t->n_added++] = (added_token){i, (uint32_t)len, (const uint8_t *)raw};
        t->added_first[(uint8_t)raw[0]] = 1;
    }
    qsort(t->added, (size_t)t->n_added, sizeof *t->added, cmp_added);
    return AR_OK;
}

/* ---- from GGUF metadata ----------------------------------------------------------------- */

enum {
    TT_NORMAL = 1,
    TT_UNKNOWN = 2,
    TT_CONTROL = 3,
    TT_USER_DEFINED = 4,
    TT_UNUSED = 5,
    TT_BYTE = 6
};

static ar_status gguf_string_eq(const ar_gguf *g, const char *key, const char *want,
                                const char *what, ar_err *err) {
    const char *s;
    uint64_t len;
    ar_status rc = ar_gguf_get_str(g, key, &s, &len, err);
    if (rc == AR_ERR_NOT_FOUND)
        return ar_errf(err, AR_ERR_UNSUPPORTED, "the model has no tokenizer ('%s' is missing)",
                       key);
    if (rc != AR_OK) return rc;
    if (len != strlen(want) || memcmp(s, want, len) != 0)
        return ar_errf(err, AR_ERR_UNSUPPORTED,
                       "%s '%.*s' is not supported (archrouter implements '%s')", what,
                       (int)(len < 64 ? len : 64), s, want);
    return AR_OK;
}

static ar_status gguf_special(ar_tokenizer *t, const ar_gguf *g, int which, const char *key,
                              ar_err *err) {
    int64_t v;
    ar_status rc = ar_gguf_get_int(g, key, &v, err);
    if (rc == AR_ERR_NOT_FOUND) return AR_OK;
    if (rc != AR_OK) return rc;
    if (v < 0 || v >= t->bpe.n_tokens)
        return ar_errf(err, AR_ERR_FORMAT, "%s = %" PRId64 " is outside the vocabulary", key, v);
    t->special[which] = (int32_t)v;
    return AR_OK;
}

static ar_status gguf_merges(ar_tokenizer *t, const ar_gguf *g, ar_err *err) {
    const ar_gguf_value *merges;
    ar_status rc = ar_gguf_get_array(g, "tokenizer.ggml.merges", AR_GGUF_STRING, &merges, err);
    if (rc == AR_ERR_NOT_FOUND)
        return ar_errf(err, AR_ERR_FORMAT, "missing metadata key 'tokenizer.ggml.merges'");
    if (rc != AR_OK) return rc;
    if (merges->count > UINT32_MAX / 4) return ar_errf(err, AR_ERR_LIMIT, "too many merges");
    rc = ar_bpe_reserve_merges(&t->bpe, (uint32_t)merges->count, err);
    enum { AHEAD = 8 }; /* hash-table cache misses in flight */
    for (uint64_t i = 0; i < merges->count && rc == AR_OK; i++) {
        const char *s;
        uint64_t len;
        if (i + AHEAD < merges->count) {
            ar_gguf_array_str(merges, i + AHEAD, &s, &len);
            ar_bpe_prefetch_merge(&t->bpe, s, (size_t)len);
        }
        ar_gguf_array_str(merges, i, &s, &len);
        const char *sp = memchr(s, ' ', (size_t)len);
        if (!sp || memchr(sp + 1, ' ', (size_t)(len - (uint64_t)(sp + 1 - s))))
            return ar_errf(err, AR_ERR_FORMAT,
                           "tokenizer.ggml.merges[%" PRIu64 "] is not two tokens separated by "
                           "one space",
                           i);
        rc = ar_bpe_add_merge(&t->bpe, (uint32_t)i, s, (size_t)(sp - s), sp + 1,
                              (size_t)(len - (uint64_t)(sp + 1 - s)), err);
    }
    return rc;
}

static ar_status load_gguf(ar_tokenizer *t, const ar_gguf *g, ar_err *err) {
    ar_status rc = gguf_string_eq(g, "tokenizer.ggml.model", "gpt2", "tokenizer model", err);
    if (rc == AR_OK) rc = gguf_string_eq(g, "tokenizer.ggml.pre", "qwen2", "pre-tokenizer", err);
    if (rc != AR_OK) return rc;
    const ar_gguf_value *tokens, *types = NULL;
    rc = ar_gguf_get_array(g, "tokenizer.ggml.tokens", AR_GGUF_STRING, &tokens, err);
    if (rc == AR_ERR_NOT_FOUND)
        return ar_errf(err, AR_ERR_FORMAT, "missing metadata key 'tokenizer.ggml.tokens'");
    if (rc != AR_OK) return rc;
    if (tokens->count == 0 || tokens->count > (1u << 24))
        return ar_errf(err, AR_ERR_FORMAT, "tokenizer.ggml.tokens has %" PRIu64 " entries",
                       tokens->count);
    rc = ar_gguf_get_array(g, "tokenizer.ggml.token_type", AR_GGUF_I32, &types, err);
    if (rc == AR_ERR_NOT_FOUND)
        types = NULL;
    else if (rc != AR_OK)
        return rc;
    else if (types->count != tokens->count)
        return ar_errf(err, AR_ERR_FORMAT,
                       "tokenizer.ggml.token_type has %" PRIu64 " entries for %" PRIu64 " tokens",
                       types->count, tokens->count);
    builder b;
    rc = builder_init(&b, (int32_t)tokens->count, err);
    for (int32_t i = 0; i < b.n && rc == AR_OK; i++) {
        uint64_t len;
        ar_gguf_array_str(tokens, (uint64_t)i, &b.texts[i], &len);
        if (len > 65535) rc = ar_errf(err, AR_ERR_FORMAT, "token %d is %" PRIu64 " bytes", i, len);
        b.lens[i] = (uint32_t)len;
        int32_t type = TT_NORMAL;
        if (types) memcpy(&type, types->data + 4 * (size_t)i, 4);
        b.bpe[i] = type == TT_NORMAL || type == TT_BYTE;
        b.added[i] = type == TT_CONTROL || type == TT_USER_DEFINED;
    }
    if (rc == AR_OK) rc = build(t, &b, err);
    builder_free(&b);
    if (rc == AR_OK) rc = gguf_merges(t, g, err);
    if (rc == AR_OK) rc = gguf_special(t, g, AR_TOKEN_BOS, "tokenizer.ggml.bos_token_id", err);
    if (rc == AR_OK) rc = gguf_special(t, g, AR_TOKEN_EOS, "tokenizer.ggml.eos_token_id", err);
    if (rc == AR_OK) rc = gguf_special(t, g, AR_TOKEN_PAD, "tokenizer.ggml.padding_token_id", err);
    if (rc != AR_OK) return rc;
    const char *tmpl;
    uint64_t len;
    if (ar_gguf_get_str(g, "tokenizer.chat_template", &tmpl, &len, NULL) == AR_OK) {
        t->chat_template = strndup(tmpl, (size_t)len);
        if (!t->chat_template) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    }
    return AR_OK;
}

/* ---- from tokenizer.json ------------------------------------------------------------------ */

static const char *jstr(json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key));
}

/* The normalizer, pre-tokenizer and model options must be the Qwen2 ones. */
static ar_status json_check_pipeline(ar_tokenizer *t, json_t *root, const char *file, ar_err *err) {
    json_t *model = json_object_get(root, "model");
    const char *type = jstr(model, "type");
    if (!type || strcmp(type, "BPE") != 0)
        return ar_errf(err, AR_ERR_UNSUPPORTED, "%s: model type '%s' is not supported (BPE is)",
                       file, type ? type : "(missing)");
    if (json_is_true(json_object_get(model, "byte_fallback")) ||
        (json_object_get(model, "dropout") && !json_is_null(json_object_get(model, "dropout"))))
        return ar_errf(err, AR_ERR_UNSUPPORTED, "%s: BPE byte_fallback/dropout not supported",
                       file);
    static const char *const affixes[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(model, affixes[i]);
        if (v && !json_is_null(v) && (!json_is_string(v) || json_string_length(v) > 0))
            return ar_errf(err, AR_ERR_UNSUPPORTED, "%s: BPE %s is not supported", file,
                           affixes[i]);
    }
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    json_t *norm = json_object_get(root, "normalizer");
    if (!norm || !jstr(norm, "type") || strcmp(jstr(norm, "type"), "NFC") != 0)
        return ar_errf(err, AR_ERR_UNSUPPORTED,
                       "%s: normalizer must be NFC (the Qwen2 tokenizer's)", file);
    json_t *pre = json_object_get(root, "pre_tokenizer");
    json_t *seq = json_object_get(pre, "pretokenizers");
    json_t *split = json_array_get(seq, 0), *bl = json_array_get(seq, 1);
    const char *regex = jstr(json_object_get(split, "pattern"), "Regex");
    if (!jstr(pre, "type") || strcmp(jstr(pre, "type"), "Sequence") != 0 ||
        json_array_size(seq) != 2 || !regex || strcmp(regex, qwen2_regex) != 0 ||
        !jstr(split, "behavior") || strcmp(jstr(split, "behavior"), "Isolated") != 0 ||
        json_is_true(json_object_get(split, "invert")) || !jstr(bl, "type") ||
        strcmp(jstr(bl, "type"), "ByteLevel") != 0 ||
        json_is_true(json_object_get(bl, "add_prefix_space")) ||
        json_is_true(json_object_get(bl, "use_regex")))
        return ar_errf(err, AR_ERR_UNSUPPORTED,
                       "%s: pre_tokenizer is not the Qwen2 one (Split on the Qwen2 regex, "
                       "then ByteLevel without prefix space or regex)",
                       file);
    return AR_OK;
}

/* Token ids of model.vocab and added_tokens fill the builder; returns the id count. */
static ar_status json_vocab(json_t *root, builder *b, const char *file, ar_err *err) {
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab))
        return ar_errf(err, AR_ERR_FORMAT, "%s: model.vocab missing or not an object", file);
    if (added && !json_is_array(added))
        return ar_errf(err, AR_ERR_FORMAT, "%s: added_tokens is not an array", file);
    json_int_t max_id = -1;
    const char *key;
    json_t *v;
    size_t i;
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 24))
            return ar_errf(err, AR_ERR_FORMAT, "%s: model.vocab[\"%.60s\"] is not a token id", file,
                           key);
        if (json_integer_value(v) > max_id) max_id = json_integer_value(v);
    }
    json_array_foreach(added, i, v) {
        json_t *id = json_object_get(v, "id");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= (1 << 24) || !jstr(v, "content"))
            return ar_errf(err, AR_ERR_FORMAT, "%s: added_tokens[%zu] needs an id and content",
                           file, i);
        if (json_integer_value(id) > max_id) max_id = json_integer_value(id);
    }
    ar_status rc = builder_init(b, (int32_t)(max_id + 1), err);
    if (rc != AR_OK) return rc;
    json_object_foreach(vocab, key, v) {
        json_int_t id = json_integer_value(v);
        if (b->texts[id])
            return ar_errf(err, AR_ERR_FORMAT, "%s: token id %lld is used twice", file,
                           (long long)id);
        b->texts[id] = key;
        b->lens[id] = (uint32_t)strlen(key);
        b->bpe[id] = true;
    }
    json_array_foreach(added, i, v) {
        json_int_t id = json_integer_value(json_object_get(v, "id"));
        const char *content = jstr(v, "content");
        if (json_is_true(json_object_get(v, "lstrip")) ||
            json_is_true(json_object_get(v, "rstrip")) ||
            json_is_true(json_object_get(v, "single_word")) ||
            json_is_true(json_object_get(v, "normalized")))
            return ar_errf(err, AR_ERR_UNSUPPORTED,
                           "%s: added token '%.60s' uses lstrip/rstrip/single_word/normalized",
                           file, content);
        if (b->texts[id] && strcmp(b->texts[id], content) != 0)
            return ar_errf(err, AR_ERR_FORMAT, "%s: added token id %lld is also '%.60s'", file,
                           (long long)id, b->texts[id]);
        b->texts[id] = content;
        b->lens[id] = (uint32_t)strlen(content);
        b->bpe[id] = false;
        b->added[id] = true;
    }
    return AR_OK;
}

static ar_status json_merges(ar_tokenizer *t, json_t *root, const char *file, ar_err *err) {
    json_t *merges = json_object_get(json_object_get(root, "model"), "merges");
    if (!json_is_array(merges))
        return ar_errf(err, AR_ERR_FORMAT, "%s: model.merges missing or not an array", file);
    ar_status rc = ar_bpe_reserve_merges(&t->bpe, (uint32_t)json_array_size(merges), err);
    size_t i;
    json_t *m;
    json_array_foreach(merges, i, m) {
        if (rc != AR_OK) break;
        const char *l = NULL, *r = NULL;
        size_t ll = 0, rl = 0;
        if (json_is_string(m)) { /* "left right" */
            const char *s = json_string_value(m), *sp = strchr(s, ' ');
            if (sp && !strchr(sp + 1, ' ')) {
                l = s;
                ll = (size_t)(sp - s);
                r = sp + 1;
                rl = strlen(r);
            }
        } else if (json_is_array(m) && json_array_size(m) == 2) { /* ["left", "right"] */
            l = json_string_value(json_array_get(m, 0));
            r = json_string_value(json_array_get(m, 1));
            ll = l ? strlen(l) : 0;
            rl = r ? strlen(r) : 0;
        }
        if (!l || !r)
            return ar_errf(err, AR_ERR_FORMAT, "%s: model.merges[%zu] is not a pair of tokens",
                           file, i);
        rc = ar_bpe_add_merge(&t->bpe, (uint32_t)i, l, ll, r, rl, err);
    }
    return rc;
}

/* Special ids and chat template from tokenizer_config.json beside the file (optional). */
static void json_config(ar_tokenizer *t, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_t *cfg;
    if (ar_json_load_file(path, 16u << 20, &cfg, NULL) != AR_OK) return;
    const char *tmpl = jstr(cfg, "chat_template");
    if (tmpl) t->chat_template = strdup(tmpl);
    static const char *const keys[] = {"bos_token", "eos_token", "pad_token"};
    for (int i = 0; i < 3; i++) {
        json_t *v = json_object_get(cfg, keys[i]);
        const char *s = json_is_string(v) ? json_string_value(v) : jstr(v, "content");
        if (s) t->special[i] = find_token(t, s);
    }
    json_decref(cfg);
}

/* A parsed tokenizer.json; `name` names it in messages. */
static ar_status load_json_root(ar_tokenizer *t, json_t *root, const char *name, ar_err *err) {
    builder b = {0};
    ar_status rc = json_check_pipeline(t, root, name, err);
    if (rc == AR_OK) rc = json_vocab(root, &b, name, err);
    if (rc == AR_OK) rc = build(t, &b, err);
    if (rc == AR_OK) rc = json_merges(t, root, name, err);
    builder_free(&b);
    return rc;
}

static ar_status load_json(ar_tokenizer *t, const char *path, ar_err *err) {
    json_t *root;
    ar_status rc = ar_json_load_file(path, 256u << 20, &root, err);
    if (rc != AR_OK) return rc;
    rc = load_json_root(t, root, path, err);
    json_decref(root);
    if (rc != AR_OK) return rc;
    char *dir = strdup(path);
    if (!dir) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    json_config(t, slash ? dir : ".");
    free(dir);
    return AR_OK;
}

/* ---- open / free ---------------------------------------------------------------------- */

static ar_status begin(const ar_tokenizer_params *params, ar_tokenizer **out) {
    if (!out) return AR_ERR_INVALID_ARG;
    ar_tokenizer *t = calloc(1, sizeof *t);
    *out = t;
    if (!t) return AR_ERR_NOMEM;
    t->failed = true;
    t->params = params ? *params : ar_tokenizer_default_params();
    if (t->params.max_input_bytes == 0) t->params.max_input_bytes = DEFAULT_MAX_INPUT;
    for (int i = 0; i < 3; i++) t->special[i] = -1;
    return AR_OK;
}

static ar_status finish(ar_tokenizer *t, ar_status rc) {
    if (rc == AR_OK && t->params.cache_bytes > 0) {
        t->cache = ar_tok_cache_new(t->params.cache_bytes);
        if (!t->cache) rc = ar_errf(&t->err, AR_ERR_NOMEM, "out of memory for the cache");
    }
    if (rc == AR_OK) {
        t->failed = false;
        t->err.msg[0] = 0;
    }
    return rc;
}

static ar_status json_in_dir(ar_tokenizer *t, const char *dir) {
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (stat(path, &st) != 0)
        return ar_errf(&t->err, AR_ERR_NOT_FOUND, "%s: no tokenizer.json in this directory", dir);
    return load_json(t, path, &t->err);
}

ar_status ar_tokenizer_from_model(const ar_model *model, const ar_tokenizer_params *params,
                                  ar_tokenizer **out) {
    ar_status rc = begin(params, out);
    if (rc != AR_OK) return rc;
    ar_tokenizer *t = *out;
    if (!model || model->failed) return ar_errf(&t->err, AR_ERR_INVALID_ARG, "no model");
    if (model->hf.dir)
        rc = json_in_dir(t, model->hf.dir);
    else
        rc = load_gguf(t, &model->gguf, &t->err);
    return finish(t, rc);
}

ar_status ar_tokenizer_open(const char *path, const ar_tokenizer_params *params,
                            ar_tokenizer **out) {
    ar_status rc = begin(params, out);
    if (rc != AR_OK) return rc;
    ar_tokenizer *t = *out;
    if (!path) return ar_errf(&t->err, AR_ERR_INVALID_ARG, "no path given");
    struct stat st;
    size_t n = strlen(path);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        rc = json_in_dir(t, path);
    } else if (n >= 5 && strcmp(path + n - 5, ".json") == 0) {
        rc = load_json(t, path, &t->err);
    } else {
        /* Only the metadata is needed: no model validation, no weights. */
        ar_mapfile f;
        ar_gguf g;
        rc = ar_mapfile_open(&f, path, true, 0, &t->err);
        if (rc == AR_OK) {
            rc = ar_gguf_parse(&g, f.data, f.size, &t->err);
            if (rc == AR_OK) rc = load_gguf(t, &g, &t->err);
            if (rc != AR_OK) ar_err_prefix(&t->err, rc, "%s: ", path);
            ar_gguf_free(&g);
            ar_mapfile_close(&f);
        }
    }
    return finish(t, rc);
}

ar_status ar_tokenizer_open_memory(const uint8_t *data, size_t size, bool json,
                                   const ar_tokenizer_params *params, ar_tokenizer **out) {
    ar_status rc = begin(params, out);
    if (rc != AR_OK) return rc;
    ar_tokenizer *t = *out;
    if (!data && size) return ar_errf(&t->err, AR_ERR_INVALID_ARG, "no data");
    if (json) {
        json_error_t jerr;
        json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (!root)
            return ar_errf(&t->err, AR_ERR_FORMAT, "tokenizer.json: line %d, column %d: %s",
                           jerr.line, jerr.column, jerr.text);
        rc = json_is_object(root)
                 ? load_json_root(t, root, "tokenizer.json", &t->err)
                 : ar_errf(&t->err, AR_ERR_FORMAT, "tokenizer.json: expected a JSON object");
        json_decref(root);
    } else {
        ar_gguf g;
        rc = ar_gguf_parse(&g, data, size, &t->err);
        if (rc == AR_OK) rc = load_gguf(t, &g, &t->err);
        ar_gguf_free(&g);
    }
    return finish(t, rc);
}

void ar_tokenizer_free(ar_tokenizer *t) {
    if (!t) return;
    ar_tok_cache_free(t->cache);
    ar_bpe_free(&t->bpe);
    free(t->added);
    free(t->chat_template);
    free(t);
}

const char *ar_tokenizer_errmsg(const ar_tokenizer *t) {
    return t ? t->err.msg : "out of memory";
}

/* ---- queries -------------------------------------------------------------------------- */

#define USABLE(t) ((t) && !(t)->failed)

int32_t ar_tokenizer_n_tokens(const ar_tokenizer *t) {
    return USABLE(t) ? t->bpe.n_tokens : 0;
}

const char *ar_token_bytes(const ar_tokenizer *t, int32_t id, size_t *len) {
    if (!USABLE(t) || id < 0 || id >= t->bpe.n_tokens) return NULL;
    return raw_bytes(t, id, len);
}

const char *ar_token_text(const ar_tokenizer *t, int32_t id) {
    if (!USABLE(t) || id < 0 || id >= t->bpe.n_tokens) return NULL;
    return t->bpe.text + t->bpe.text_off[id];
}

int32_t ar_tokenizer_find(const ar_tokenizer *t, const char *text) {
    return USABLE(t) && text ? find_token(t, text) : -1;
}

int32_t ar_tokenizer_special(const ar_tokenizer *t, ar_special_token which) {
    if (!USABLE(t) || (int)which < 0 || (int)which > 2) return -1;
    return t->special[which];
}

const char *ar_tokenizer_chat_template(const ar_tokenizer *t) {
    return USABLE(t) ? t->chat_template : NULL;
}

/* ---- encoding ------------------------------------------------------------------------- */

typedef struct encoder {
    const ar_tokenizer *tok;
    int32_t *ids; /* growable output */
    size_t n, cap;
    ar_bpe_scratch bpe;
    uint32_t *pretok; /* pre-tokenizer scratch */
    size_t pretok_cap;
    const uint8_t *seg; /* the segment being split */
    bool oom;
} encoder;

static bool grow_ids(encoder *e, size_t more) {
    if (e->n + more <= e->cap) return true;
    size_t cap = e->cap ? e->cap : 256;
    while (cap < e->n + more) cap *= 2;
    int32_t *ids = realloc(e->ids, cap * sizeof *ids);
    if (!ids) return false;
    e->ids = ids;
    e->cap = cap;
    return true;
}

static int encode_piece(size_t start, size_t end, void *user) {
    encoder *e = user;
    size_t len = end - start;
    if (!grow_ids(e, len)) return e->oom = true;
    const uint8_t *p = e->seg + start;
    int32_t whole;
    if (e->tok->ignore_merges && (whole = ar_bpe_find_raw(&e->tok->bpe, p, len)) >= 0) {
        e->ids[e->n++] = whole;
        return 0;
    }
    ar_tok_cache *cache = e->tok->cache;
    long n = cache ? ar_tok_cache_get(cache, p, len, e->ids + e->n) : -1;
    if (n < 0) {
        n = ar_bpe_encode(&e->tok->bpe, p, len, &e->bpe, e->ids + e->n);
        if (n < 0) return e->oom = true;
        if (cache) ar_tok_cache_put(cache, p, len, e->ids + e->n, (size_t)n);
    }
    e->n += (size_t)n;
    return 0;
}

/* NFC is the identity when every code point is below U+0300 (lead bytes < 0xCC). */
static bool nfc_stable(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0xCC) return false;
    return true;
}

static ar_status encode_segment(encoder *e, const uint8_t *s, size_t n) {
    if (n == 0) return AR_OK;
    uint8_t *norm = NULL;
    if (!nfc_stable(s, n)) {
        utf8proc_ssize_t r =
            utf8proc_map(s, (utf8proc_ssize_t)n, &norm, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0) return r == UTF8PROC_ERROR_NOMEM ? AR_ERR_NOMEM : AR_ERR_INVALID_INPUT;
        s = norm;
        n = (size_t)r;
    }
    ar_status rc = AR_OK;
    if (2 * (n + 1) > e->pretok_cap) {
        uint32_t *p = realloc(e->pretok, 2 * (n + 1) * sizeof *p);
        if (!p)
            rc = AR_ERR_NOMEM;
        else {
            e->pretok = p;
            e->pretok_cap = 2 * (n + 1);
        }
    }
    if (rc == AR_OK) {
        e->seg = s;
        ar_pretok_qwen2(s, n, e->pretok, encode_piece, e);
        if (e->oom) rc = AR_ERR_NOMEM;
    }
    free(norm);
    return rc;
}

/* The added token that starts at s (longest first), or NULL. */
static const added_token *match_added(const ar_tokenizer *t, const uint8_t *s, size_t n) {
    for (int32_t i = 0; i < t->n_added; i++)
        if (t->added[i].len <= n && memcmp(s, t->added[i].bytes, t->added[i].len) == 0)
            return &t->added[i];
    return NULL;
}

static ar_status encode_text(encoder *e, const uint8_t *s, size_t n, bool special) {
    const ar_tokenizer *t = e->tok;
    size_t seg = 0;
    for (size_t i = 0; special && i < n; i++) {
        if (!t->added_first[s[i]]) continue;
        const added_token *a = match_added(t, s + i, n - i);
        if (!a) continue;
        ar_status rc = encode_segment(e, s + seg, i - seg);
        if (rc != AR_OK) return rc;
        if (!grow_ids(e, 1)) return AR_ERR_NOMEM;
        e->ids[e->n++] = a->id;
        i += a->len - 1;
        seg = i + 1;
    }
    return encode_segment(e, s + seg, n - seg);
}

/* A copy of s with every byte that does not start a valid UTF-8 sequence replaced by
 * U+FFFD (3 bytes), so the copy is at most 3 times as long. */
static uint8_t *replace_invalid(const uint8_t *s, size_t n, size_t *out_len) {
    uint8_t *d = malloc(3 * n + 1);
    if (!d) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        utf8proc_ssize_t r =
            s[i] < 0x80 ? 1
                        : utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i < 4 ? n - i : 4), &cp);
        if (r > 0) {
            memcpy(d + k, s + i, (size_t)r);
            k += (size_t)r;
            i += (size_t)r;
        } else {
            memcpy(d + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    *out_len = k;
    return d;
}

ar_status ar_tokenize(const ar_tokenizer *t, const char *text, size_t len, uint32_t flags,
                      int32_t *ids, size_t cap, size_t *n_ids) {
    if (!USABLE(t) || !n_ids || (!text && len) || (!ids && cap)) return AR_ERR_INVALID_ARG;
    *n_ids = 0;
    if (len > t->params.max_input_bytes) return AR_ERR_LIMIT;
    const uint8_t *s = (const uint8_t *)text;
    uint8_t *fixed = NULL;
    size_t bad;
    if (len && !ar_utf8_valid(s, len, &bad)) {
        if (!(flags & AR_TOKENIZE_REPLACE_INVALID)) {
            *n_ids = bad;
            return AR_ERR_INVALID_INPUT;
        }
        fixed = replace_invalid(s, len, &len);
        if (!fixed) return AR_ERR_NOMEM;
        s = fixed;
    }
    encoder e = {.tok = t};
    ar_status rc = encode_text(&e, s, len, (flags & AR_TOKENIZE_SPECIAL) != 0);
    if (rc == AR_OK) {
        *n_ids = e.n;
        if (e.n > cap)
            rc = AR_ERR_BUFFER_TOO_SMALL;
        else if (e.n)
            memcpy(ids, e.ids, e.n * sizeof *ids);
    }
    free(e.ids);
    free(e.pretok);
    ar_bpe_scratch_free(&e.bpe);
    free(fixed);
    return rc;
}

ar_status ar_detokenize(const ar_tokenizer *t, const int32_t *ids, size_t n_ids, char *buf,
                        size_t cap, size_t *len) {
    if (!USABLE(t) || !len || (!ids && n_ids) || (!buf && cap)) return AR_ERR_INVALID_ARG;
    size_t total = 0;
    for (size_t i = 0; i < n_ids; i++) {
        size_t n;
        const char *p = ar_token_bytes(t, ids[i], &n);
        if (!p) return AR_ERR_INVALID_ARG;
        if (total + n <= cap) memcpy(buf + total, p, n);
        total += n;
    }
    *len = total;
    return total <= cap ? AR_OK : AR_ERR_BUFFER_TOO_SMALL;
}
