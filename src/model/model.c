/*
 * model.c - ar_model: opening a router model from GGUF or a Hugging Face checkpoint, and
 * the public model API (include/archrouter.h).
 *
 * Opening maps the file(s), parses them (gguf.c or safetensors.c + hfdir.c), turns every
 * tensor into a format-neutral ar_tensor (shape in GGUF order, data in place), indexes the
 * tensors by name (which also finds duplicates across shards), reads the Qwen2
 * hyper-parameters and binds every weight the forward pass needs (qwen2.c). Only then is
 * the model returned. A failed open still returns a handle carrying the error message.
 */
#include "model/model.h"

#include "base/clock.h"
#include "base/mapfile.h"
#include "kernels/types.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

ar_model_params ar_model_default_params(void) {
    ar_model_params p = {.use_mmap = true, .allow_vocab_only = false, .max_file_bytes = 0};
    return p;
}

/* ---- tensor index ------------------------------------------------------------------- */

static int cmp_tensor_name(const void *a, const void *b) {
    return strcmp((*(ar_tensor *const *)a)->name, (*(ar_tensor *const *)b)->name);
}

static ar_status index_tensors(ar_model *m, ar_err *err) {
    m->by_name = malloc((size_t)(m->n_tensors ? m->n_tensors : 1) * sizeof *m->by_name);
    if (!m->by_name) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < m->n_tensors; i++) m->by_name[i] = &m->tensors[i];
    qsort(m->by_name, (size_t)m->n_tensors, sizeof *m->by_name, cmp_tensor_name);
    for (int32_t i = 1; i < m->n_tensors; i++)
        if (strcmp(m->by_name[i - 1]->name, m->by_name[i]->name) == 0)
            return ar_errf(
                err, AR_ERR_FORMAT, "duplicate tensor name '%s'%s", m->by_name[i]->name,
                m->by_name[i - 1]->file != m->by_name[i]->file ? " (in two different shards)" : "");
    return AR_OK;
}

const ar_tensor *ar_model_find_tensor(const ar_model *m, const char *name) {
    if (!m->by_name) return NULL;
    ar_tensor key = {.name = name};
    const ar_tensor *kp = &key;
    ar_tensor **hit =
        bsearch(&kp, m->by_name, (size_t)m->n_tensors, sizeof *m->by_name, cmp_tensor_name);
    return hit ? *hit : NULL;
}

static const ar_tensor *lookup(const void *ctx, const char *name) {
    return ar_model_find_tensor(ctx, name);
}

/* ---- GGUF --------------------------------------------------------------------------- */

/* llama.cpp's general.file_type values (llama_ftype), for display. */
static const char *ftype_name(int64_t ft) {
    static const char *const names[] = {
        [0] = "F32",      [1] = "F16",      [2] = "Q4_0",       [3] = "Q4_1",    [7] = "Q8_0",
        [8] = "Q5_0",     [9] = "Q5_1",     [10] = "Q2_K",      [11] = "Q3_K_S", [12] = "Q3_K_M",
        [13] = "Q3_K_L",  [14] = "Q4_K_S",  [15] = "Q4_K_M",    [16] = "Q5_K_S", [17] = "Q5_K_M",
        [18] = "Q6_K",    [19] = "IQ2_XXS", [20] = "IQ2_XS",    [21] = "Q2_K_S", [22] = "IQ3_XS",
        [23] = "IQ3_XXS", [24] = "IQ1_S",   [25] = "IQ4_NL",    [26] = "IQ3_S",  [27] = "IQ3_M",
        [28] = "IQ2_S",   [29] = "IQ2_M",   [30] = "IQ4_XS",    [31] = "IQ1_M",  [32] = "BF16",
        [36] = "TQ1_0",   [37] = "TQ2_0",   [38] = "MXFP4_MOE",
    };
    ft &= ~(int64_t)1024; /* LLAMA_FTYPE_GUESSED */
    if (ft < 0 || ft >= (int64_t)(sizeof names / sizeof names[0]) || !names[ft]) return NULL;
    return names[ft];
}

static char *dup_n(const char *s, uint64_t len) {
    char *d = malloc((size_t)len + 1);
    if (d) {
        memcpy(d, s, (size_t)len);
        d[len] = 0;
    }
    return d;
}

/* NUL-terminated copies of every string value (a value holding a NUL is cut there). */
static ar_status gguf_strings(ar_model *m, ar_err *err) {
    m->meta_strs = calloc((size_t)(m->gguf.n_kv ? m->gguf.n_kv : 1), sizeof *m->meta_strs);
    if (!m->meta_strs) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    for (uint64_t i = 0; i < m->gguf.n_kv; i++) {
        const ar_gguf_value *v = &m->gguf.kv[i].value;
        if (v->type != AR_GGUF_STRING) continue;
        m->meta_strs[i] = dup_n((const char *)v->data, v->count);
        if (!m->meta_strs[i]) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    }
    return AR_OK;
}

/* A GGUF string key as an owned C string ("" when absent). */
static ar_status gguf_owned_str(ar_model *m, const char *key, char **out, ar_err *err) {
    const char *s = "";
    uint64_t len = 0;
    ar_status rc = ar_gguf_get_str(&m->gguf, key, &s, &len, err);
    if (rc != AR_OK && rc != AR_ERR_NOT_FOUND) return rc;
    if (memchr(s, 0, (size_t)len)) len = strlen(s);
    *out = dup_n(s, len);
    return *out ? AR_OK : ar_errf(err, AR_ERR_NOMEM, "out of memory");
}

/* Vocabulary texts (tokenizer.ggml.tokens) as NUL-terminated strings in one pool. */
static ar_status gguf_vocab(ar_model *m, ar_err *err) {
    const ar_gguf_value *tokens;
    ar_status rc =
        ar_gguf_get_array(&m->gguf, "tokenizer.ggml.tokens", AR_GGUF_STRING, &tokens, err);
    if (rc == AR_ERR_NOT_FOUND) return AR_OK;
    if (rc != AR_OK) return rc;
    if (tokens->count > INT32_MAX)
        return ar_errf(err, AR_ERR_LIMIT, "tokenizer.ggml.tokens has too many entries");
    m->n_tokens = (int32_t)tokens->count;
    /* Element texts plus one NUL each fit in the array's bytes (each had an 8-byte length). */
    m->vocab_pool = malloc((size_t)tokens->size + 1);
    m->vocab_off = malloc((size_t)(m->n_tokens ? m->n_tokens : 1) * sizeof *m->vocab_off);
    if (!m->vocab_pool || !m->vocab_off) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    uint64_t pos = 0;
    for (int32_t i = 0; i < m->n_tokens; i++) {
        const char *s;
        uint64_t len;
        ar_gguf_array_str(tokens, (uint64_t)i, &s, &len);
        m->vocab_off[i] = pos;
        memcpy(m->vocab_pool + pos, s, (size_t)len);
        pos += len;
        m->vocab_pool[pos++] = 0;
    }
    return AR_OK;
}

static ar_status gguf_special_id(ar_model *m, const char *key, int32_t *out, ar_err *err) {
    int64_t v;
    *out = -1;
    ar_status rc = ar_gguf_get_int(&m->gguf, key, &v, err);
    if (rc == AR_ERR_NOT_FOUND) return AR_OK;
    if (rc != AR_OK) return rc;
    /* Without a vocabulary the id cannot be checked, only kept if it is plausible. */
    if (v < 0 || v > INT32_MAX || (m->vocab_off && v >= m->n_tokens))
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s = %" PRId64 " is outside the vocabulary (%" PRId32 " tokens)", key, v,
                       m->n_tokens);
    *out = (int32_t)v;
    return AR_OK;
}

static ar_status gguf_tokenizer(ar_model *m, ar_err *err) {
    ar_status rc = gguf_vocab(m, err);
    if (rc == AR_OK) rc = gguf_owned_str(m, "tokenizer.ggml.model", &m->tok_model, err);
    if (rc == AR_OK) rc = gguf_owned_str(m, "tokenizer.ggml.pre", &m->tok_pre, err);
    if (rc == AR_OK) rc = gguf_special_id(m, "tokenizer.ggml.bos_token_id", &m->bos_id, err);
    if (rc == AR_OK) rc = gguf_special_id(m, "tokenizer.ggml.eos_token_id", &m->eos_id, err);
    if (rc == AR_OK) rc = gguf_special_id(m, "tokenizer.ggml.padding_token_id", &m->pad_id, err);
    if (rc != AR_OK) return rc;
    const char *tmpl;
    uint64_t len;
    rc = ar_gguf_get_str(&m->gguf, "tokenizer.chat_template", &tmpl, &len, err);
    if (rc != AR_OK && rc != AR_ERR_NOT_FOUND) return rc;
    m->has_chat_template = rc == AR_OK && len > 0;
    return AR_OK;
}

static ar_status open_gguf(ar_model *m, ar_err *err) {
    ar_status rc = ar_gguf_parse(&m->gguf, m->files[0].data, m->files[0].size, err);
    if (rc != AR_OK) return rc;
    m->format = "gguf";
    if (m->gguf.n_tensors > INT32_MAX) return ar_errf(err, AR_ERR_LIMIT, "too many tensors");
    m->n_tensors = (int32_t)m->gguf.n_tensors;
    m->tensors = calloc((size_t)(m->n_tensors ? m->n_tensors : 1), sizeof *m->tensors);
    if (!m->tensors) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    for (int32_t i = 0; i < m->n_tensors; i++) {
        const ar_gguf_tensor *g = &m->gguf.tensors[i];
        ar_tensor *t = &m->tensors[i];
        t->name = g->name;
        t->type = g->type;
        t->n_dims = (int32_t)g->n_dims;
        memcpy(t->ne, g->ne, sizeof t->ne);
        t->n_elements = g->n_elements;
        t->n_bytes = g->n_bytes;
        t->data = g->data;
        t->file_offset = m->gguf.data_offset + g->offset;
    }
    rc = index_tensors(m, err);
    if (rc == AR_OK) rc = gguf_strings(m, err);
    if (rc == AR_OK) rc = gguf_owned_str(m, "general.architecture", &m->arch, err);
    if (rc == AR_OK) rc = gguf_owned_str(m, "general.name", &m->name, err);
    if (rc == AR_OK) rc = ar_qwen2_hparams_from_gguf(&m->gguf, &m->hp, err);
    if (rc == AR_OK) rc = gguf_tokenizer(m, err);
    if (rc != AR_OK) return rc;
    int64_t ft;
    if (ar_gguf_get_int(&m->gguf, "general.file_type", &ft, NULL) == AR_OK && ftype_name(ft))
        m->file_type = strdup(ftype_name(ft));
    m->n_meta = (int32_t)(m->gguf.n_kv > INT32_MAX ? INT32_MAX : m->gguf.n_kv);
    if (m->n_tensors == 0) {
        if (!m->params.allow_vocab_only)
            return ar_errf(err, AR_ERR_MODEL,
                           "the file has no tensors (a vocabulary-only GGUF?): it cannot be run");
        if (!m->vocab_off)
            return ar_errf(err, AR_ERR_MODEL, "the file has neither tensors nor a vocabulary");
        m->vocab_only = true;
        m->hp.n_vocab = m->n_tokens;
        return AR_OK;
    }
    rc = ar_qwen2_bind(&m->hp, AR_NAMING_GGUF, lookup, m, &m->w, err);
    if (rc == AR_OK && m->n_tokens > m->hp.n_vocab)
        return ar_errf(err, AR_ERR_MODEL,
                       "the vocabulary has %" PRId32 " tokens but token_embd only %" PRId32 " rows",
                       m->n_tokens, m->hp.n_vocab);
    return rc;
}

/* ---- Hugging Face checkpoint ---------------------------------------------------------- */

static ar_status map_shards(ar_model *m, ar_err *err) {
    m->n_files = m->hf.n_shards;
    m->files = calloc((size_t)m->n_files, sizeof *m->files);
    if (!m->files) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    for (int i = 0; i < m->n_files; i++) {
        ar_status rc = ar_mapfile_open(&m->files[i], m->hf.shard_paths[i], m->params.use_mmap,
                                       m->params.max_file_bytes, err);
        if (rc != AR_OK) return rc;
    }
    return AR_OK;
}

static ar_status parse_shards(ar_model *m, ar_err *err) {
    m->st = calloc((size_t)m->n_files, sizeof *m->st);
    if (!m->st) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    uint64_t total = 0;
    for (int i = 0; i < m->n_files; i++) {
        ar_status rc = ar_safetensors_parse(&m->st[i], m->files[i].data, m->files[i].size,
                                            m->hf.shard_names[i], err);
        if (rc != AR_OK) return rc;
        total += m->st[i].n_tensors;
    }
    if (total > INT32_MAX) return ar_errf(err, AR_ERR_LIMIT, "too many tensors");
    m->n_tensors = (int32_t)total;
    return AR_OK;
}

static void st_tensor_to_tensor(const ar_safetensors *st, const ar_st_tensor *s, int file,
                                ar_tensor *t) {
    t->name = s->name;
    t->type = s->dtype;
    t->n_dims = s->n_dims > 0 ? s->n_dims : 1;
    for (int d = 0; d < 4; d++) t->ne[d] = 1;
    for (int d = 0; d < s->n_dims; d++) t->ne[d] = s->shape[s->n_dims - 1 - d];
    t->n_elements = s->n_elements;
    t->n_bytes = s->end - s->begin;
    t->data = s->data;
    t->file_offset = st->data_offset + s->begin;
    t->file = file;
}

/* Every tensor the index lists must be in the shard it names. */
static ar_status check_weight_map(ar_model *m, ar_err *err) {
    const char *name;
    json_t *file;
    json_object_foreach(m->hf.weight_map, name, file) {
        const ar_tensor *t = ar_model_find_tensor(m, name);
        if (!t)
            return ar_errf(err, AR_ERR_FORMAT,
                           "model.safetensors.index.json lists tensor '%.200s' in '%.100s', but "
                           "no shard has it",
                           name, json_string_value(file));
        if (strcmp(m->hf.shard_names[t->file], json_string_value(file)) != 0)
            return ar_errf(err, AR_ERR_FORMAT,
                           "model.safetensors.index.json puts tensor '%.200s' in '%.100s', but "
                           "it is in '%.100s'",
                           name, json_string_value(file), m->hf.shard_names[t->file]);
    }
    return AR_OK;
}

static int32_t config_id(json_t *cfg, const char *key) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_array(v)) v = json_array_get(v, 0); /* eos_token_id may be a list */
    if (!json_is_integer(v)) return -1;
    json_int_t id = json_integer_value(v);
    return id >= 0 && id <= INT32_MAX ? (int32_t)id : -1;
}

/* The shards are mapped and m->hf.config is loaded: parse, index, bind. */
static ar_status load_hf(ar_model *m, ar_err *err) {
    ar_status rc = parse_shards(m, err);
    if (rc != AR_OK) return rc;
    m->format = "safetensors";
    m->tensors = calloc((size_t)(m->n_tensors ? m->n_tensors : 1), sizeof *m->tensors);
    if (!m->tensors) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    int32_t k = 0;
    for (int f = 0; f < m->n_files; f++)
        for (uint64_t i = 0; i < m->st[f].n_tensors; i++)
            st_tensor_to_tensor(&m->st[f], &m->st[f].tensors[i], f, &m->tensors[k++]);
    rc = index_tensors(m, err);
    if (rc == AR_OK && m->hf.weight_map) rc = check_weight_map(m, err);
    if (rc == AR_OK) rc = ar_qwen2_hparams_from_config(m->hf.config, &m->hp, err);
    if (rc == AR_OK) rc = ar_qwen2_bind(&m->hp, AR_NAMING_HF, lookup, m, &m->w, err);
    if (rc != AR_OK) return rc;
    const char *base = strrchr(m->hf.dir, '/');
    m->arch = strdup("qwen2");
    m->name = strdup(base && base[1] ? base + 1 : m->hf.dir);
    m->tok_model = strdup("");
    m->tok_pre = strdup("");
    if (!m->arch || !m->name || !m->tok_model || !m->tok_pre)
        return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    m->bos_id = config_id(m->hf.config, "bos_token_id");
    m->eos_id = config_id(m->hf.config, "eos_token_id");
    m->pad_id = config_id(m->hf.config, "pad_token_id");
    m->has_chat_template = m->hf.has_chat_template;
    /* Metadata = the top-level fields of config.json, in file order. */
    size_t n = json_object_size(m->hf.config);
    m->meta_keys = calloc(n ? n : 1, sizeof *m->meta_keys);
    if (!m->meta_keys) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    const char *key;
    json_t *v;
    json_object_foreach(m->hf.config, key, v) m->meta_keys[m->n_meta++] = key;
    return AR_OK;
}

static ar_status open_hf(ar_model *m, ar_err *err) {
    ar_status rc = ar_hf_dir_open(&m->hf, m->path, err);
    if (rc == AR_OK) rc = map_shards(m, err);
    if (rc == AR_OK) rc = load_hf(m, err);
    return rc;
}

/* A single in-memory safetensors shard with its config.json text. */
static ar_status open_hf_memory(ar_model *m, const char *config_json, ar_err *err) {
    json_error_t jerr;
    m->hf.config = json_loads(config_json, JSON_REJECT_DUPLICATES, &jerr);
    if (!m->hf.config)
        return ar_errf(err, AR_ERR_FORMAT, "config.json: line %d, column %d: %s", jerr.line,
                       jerr.column, jerr.text);
    if (!json_is_object(m->hf.config))
        return ar_errf(err, AR_ERR_FORMAT, "config.json: expected a JSON object");
    m->hf.dir = strdup("memory");
    m->hf.shard_names = calloc(1, sizeof *m->hf.shard_names);
    m->hf.shard_paths = calloc(1, sizeof *m->hf.shard_paths);
    if (!m->hf.dir || !m->hf.shard_names || !m->hf.shard_paths)
        return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    m->hf.n_shards = 1;
    m->hf.shard_names[0] = strdup("model.safetensors");
    m->hf.shard_paths[0] = strdup("memory/model.safetensors");
    if (!m->hf.shard_names[0] || !m->hf.shard_paths[0])
        return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    return load_hf(m, err);
}

/* ---- summary ------------------------------------------------------------------------ */

typedef struct weight_sums {
    uint64_t params, bytes;
    int32_t matrix_type; /* the one type of all matrices, -1 before any, -2 when mixed */
} weight_sums;

static void add_weight(const ar_tensor *t, void *user) {
    weight_sums *s = user;
    s->params += t->n_elements;
    s->bytes += t->n_bytes;
    if (t->n_dims >= 2) {
        if (s->matrix_type == -1)
            s->matrix_type = (int32_t)t->type;
        else if (s->matrix_type != (int32_t)t->type)
            s->matrix_type = -2;
    }
}

static ar_status summarize(ar_model *m, ar_err *err) {
    weight_sums s = {.matrix_type = -1};
    ar_qwen2_for_each(&m->hp, &m->w, add_weight, &s);
    if (!m->file_type) {
        const char *ft = s.matrix_type >= 0    ? ar_type_name((ar_type)s.matrix_type)
                         : s.matrix_type == -2 ? "mixed"
                                               : "";
        m->file_type = strdup(ft);
        if (!m->file_type) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    }
    uint64_t file_bytes = 0;
    for (int i = 0; i < m->n_files; i++) file_bytes += m->files[i].size;
    ar_model_info *in = &m->info;
    memset(in, 0, sizeof *in);
    in->architecture = m->arch;
    in->name = m->name;
    in->format = m->format;
    in->file_type = m->file_type;
    in->format_version = m->gguf.version;
    in->vocab_only = m->vocab_only;
    in->n_layers = m->hp.n_layers;
    in->n_heads = m->hp.n_heads;
    in->n_kv_heads = m->hp.n_kv_heads;
    in->head_dim = m->hp.head_dim;
    in->n_embd = m->hp.n_embd;
    in->n_ff = m->hp.n_ff;
    in->n_vocab = m->hp.n_vocab;
    in->n_ctx_train = m->hp.n_ctx_train;
    in->rope_theta = m->hp.rope_theta;
    in->rms_eps = m->hp.rms_eps;
    in->tied_embeddings = m->hp.tied;
    in->n_params = s.params;
    in->n_weight_bytes = s.bytes;
    in->n_tensors = m->n_tensors;
    in->file_bytes = file_bytes;
    in->n_files = m->n_files;
    in->tokenizer_model = m->tok_model;
    in->tokenizer_pre = m->tok_pre;
    in->n_tokens = m->vocab_off ? m->n_tokens : -1;
    in->bos_id = m->bos_id;
    in->eos_id = m->eos_id;
    in->pad_id = m->pad_id;
    in->has_chat_template = m->has_chat_template;
    return AR_OK;
}

/* ---- open / free -------------------------------------------------------------------- */

static bool is_directory(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_suffix(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static ar_status open_any(ar_model *m, ar_err *err) {
    if (is_directory(m->path) || has_suffix(m->path, ".safetensors")) return open_hf(m, err);
    m->files = calloc(1, sizeof *m->files);
    if (!m->files) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    m->n_files = 1;
    ar_status rc =
        ar_mapfile_open(&m->files[0], m->path, m->params.use_mmap, m->params.max_file_bytes, err);
    if (rc != AR_OK) return rc;
    if (!ar_gguf_has_magic(m->files[0].data, m->files[0].size) && m->files[0].size >= 4)
        return ar_errf(err, AR_ERR_FORMAT,
                       "%s: not a GGUF file (magic %02x %02x %02x %02x), a .safetensors file "
                       "or a checkpoint directory",
                       m->path, m->files[0].data[0], m->files[0].data[1], m->files[0].data[2],
                       m->files[0].data[3]);
    rc = open_gguf(m, err);
    if (rc != AR_OK) ar_err_prefix(err, rc, "%s: ", m->path);
    return rc;
}

/* Allocate the handle every open returns (failed until finish_open succeeds). */
static ar_status begin_open(const ar_model_params *params, ar_model **out) {
    ar_model *m = calloc(1, sizeof *m);
    *out = m;
    if (!m) return AR_ERR_NOMEM;
    m->failed = true;
    m->params = params ? *params : ar_model_default_params();
    m->bos_id = m->eos_id = m->pad_id = -1;
    return AR_OK;
}

static ar_status finish_open(ar_model *m, ar_status rc, double t0) {
    if (rc == AR_OK) rc = summarize(m, &m->err);
    if (rc != AR_OK) return rc;
    m->info.load_ms = ar_clock_ms() - t0;
    m->failed = false;
    m->err.msg[0] = 0;
    return AR_OK;
}

ar_status ar_model_open(const char *path, const ar_model_params *params, ar_model **out) {
    if (!out) return AR_ERR_INVALID_ARG;
    double t0 = ar_clock_ms();
    ar_status rc = begin_open(params, out);
    if (rc != AR_OK) return rc;
    ar_model *m = *out;
    if (!path || !*path) return ar_errf(&m->err, AR_ERR_INVALID_ARG, "no model path given");
    m->path = strdup(path);
    if (!m->path) return ar_errf(&m->err, AR_ERR_NOMEM, "out of memory");
    return finish_open(m, open_any(m, &m->err), t0);
}

ar_status ar_model_open_memory(const uint8_t *data, size_t size, const char *config_json,
                               const ar_model_params *params, ar_model **out) {
    if (!out || (!data && size)) return AR_ERR_INVALID_ARG;
    double t0 = ar_clock_ms();
    ar_status rc = begin_open(params, out);
    if (rc != AR_OK) return rc;
    ar_model *m = *out;
    m->path = strdup("memory");
    m->files = calloc(1, sizeof *m->files);
    if (!m->path || !m->files) return ar_errf(&m->err, AR_ERR_NOMEM, "out of memory");
    m->n_files = 1;
    ar_mapfile_borrow(&m->files[0], data, size);
    rc = config_json ? open_hf_memory(m, config_json, &m->err) : open_gguf(m, &m->err);
    return finish_open(m, rc, t0);
}

void ar_model_free(ar_model *m) {
    if (!m) return;
    for (uint64_t i = 0; m->meta_strs && i < m->gguf.n_kv; i++) free(m->meta_strs[i]);
    free(m->meta_strs);
    ar_qwen2_weights_free(&m->w);
    ar_gguf_free(&m->gguf);
    for (int i = 0; m->st && i < m->n_files; i++) ar_safetensors_free(&m->st[i]);
    free(m->st);
    ar_hf_dir_free(&m->hf);
    for (int i = 0; m->files && i < m->n_files; i++) ar_mapfile_close(&m->files[i]);
    free(m->files);
    free(m->tensors);
    free(m->by_name);
    free(m->meta_keys);
    free(m->vocab_pool);
    free(m->vocab_off);
    free(m->arch);
    free(m->name);
    free(m->file_type);
    free(m->tok_model);
    free(m->tok_pre);
    free(m->path);
    free(m);
}

const char *ar_model_errmsg(const ar_model *m) {
    return m ? m->err.msg : "out of memory";
}

/* ---- queries ------------------------------------------------------------------------ */

#define USABLE(m) ((m) && !(m)->failed)

ar_status ar_model_get_info(const ar_model *m, ar_model_info *info) {
    if (!USABLE(m) || !info) return AR_ERR_INVALID_ARG;
    *info = m->info;
    return AR_OK;
}

const char *ar_model_token_text(const ar_model *m, int32_t id) {
    if (!USABLE(m) || !m->vocab_off || id < 0 || id >= m->n_tokens) return NULL;
    return m->vocab_pool + m->vocab_off[id];
}

int32_t ar_model_n_tensors(const ar_model *m) {
    return USABLE(m) ? m->n_tensors : 0;
}

ar_status ar_model_tensor_info(const ar_model *m, int32_t index, ar_tensor_info *info) {
    if (!USABLE(m) || !info || index < 0 || index >= m->n_tensors) return AR_ERR_INVALID_ARG;
    const ar_tensor *t = &m->tensors[index];
    info->name = t->name;
    info->type = (ar_type)t->type;
    info->n_dims = t->n_dims;
    memcpy(info->ne, t->ne, sizeof info->ne);
    info->n_elements = t->n_elements;
    info->n_bytes = t->n_bytes;
    info->file_offset = t->file_offset;
    return AR_OK;
}

int32_t ar_model_tensor_find(const ar_model *m, const char *name) {
    if (!USABLE(m) || !name) return -1;
    const ar_tensor *t = ar_model_find_tensor(m, name);
    return t ? (int32_t)(t - m->tensors) : -1;
}

ar_status ar_model_tensor_to_f32(const ar_model *m, int32_t index, float *dst, uint64_t dst_len) {
    if (!USABLE(m) || !dst || index < 0 || index >= m->n_tensors) return AR_ERR_INVALID_ARG;
    const ar_tensor *t = &m->tensors[index];
    if (dst_len < t->n_elements) return AR_ERR_INVALID_ARG;
    const ar_type_traits *tt = ar_type_traits_get(t->type);
    if (!tt) return AR_ERR_INTERNAL; /* every loaded tensor has a supported type */
    if (t->n_elements > 0) tt->to_float(t->data, dst, (int64_t)t->n_elements);
    return AR_OK;
}

int32_t ar_model_meta_count(const ar_model *m) {
    return USABLE(m) ? m->n_meta : 0;
}

const char *ar_model_meta_key(const ar_model *m, int32_t i) {
    if (!USABLE(m) || i < 0 || i >= m->n_meta) return NULL;
    return m->meta_keys ? m->meta_keys[i] : m->gguf.kv[i].key;
}

int64_t ar_model_meta_value_text(const ar_model *m, int32_t i, char *buf, size_t buf_size) {
    if (!USABLE(m) || i < 0 || i >= m->n_meta) return -1;
    if (!m->meta_keys) return ar_gguf_value_text(&m->gguf.kv[i].value, buf, buf_size);
    json_t *v = json_object_get(m->hf.config, m->meta_keys[i]);
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s) return -1;
    int64_t len = (int64_t)strlen(s);
    if (buf_size) snprintf(buf, buf_size, "%s", s);
    free(s);
    return len;
}

const char *ar_model_meta_str(const ar_model *m, const char *key) {
    if (!USABLE(m) || !key) return NULL;
    if (m->meta_keys) return json_string_value(json_object_get(m->hf.config, key));
    for (uint64_t i = 0; i < m->gguf.n_kv; i++)
        if (strcmp(m->gguf.kv[i].key, key) == 0) return m->meta_strs[i];
    return NULL;
}
