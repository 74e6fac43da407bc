/*
 * archrouter.h - the public C API of archrouter, preference-aligned LLM routing.
 *
 * This header is the whole contract: what is not declared here is private and may change.
 * It compiles as C99 and C++ and pulls in only <stddef.h>, <stdint.h> and <stdbool.h>.
 *
 * Usage
 * -----
 *     ar_model_params mp = ar_model_default_params();
 *     ar_model *model = NULL;
 *     ar_status st = ar_model_open("Arch-Router-1.5B.Q4_K_M.gguf", &mp, &model);
 *     if (st != AR_OK) {
 *         fprintf(stderr, "%s: %s\n", ar_strerror(st), ar_model_errmsg(model));
 *         ar_model_free(model);              // the failed handle holds the message
 *         return 1;
 *     }
 *     ar_model_info info;
 *     ar_model_get_info(model, &info);
 *     printf("%s, %d layers, %llu parameters\n", info.architecture, info.n_layers,
 *            (unsigned long long)info.n_params);
 *     ar_model_free(model);
 *
 * Conventions
 * -----------
 * - Every fallible function returns an ar_status. AR_OK is 0; ar_strerror() names a status.
 *   Status values are never renumbered; new ones are only appended.
 * - Objects are opaque handles created by ar_X_open()/ar_X_new() and released by
 *   ar_X_free(). Freeing NULL is a no-op.
 * - Each handle keeps a message for the last error it returned (ar_X_errmsg()): it names what
 *   was wrong and where (file offset, metadata key, tensor name, JSON field).
 * - Options come in a params struct obtained from ar_X_default_params(); set the fields you
 *   care about and pass a pointer. Passing NULL means "defaults".
 * - Strings returned by the library are owned by the handle they came from and stay valid
 *   until it is freed, unless the declaration says otherwise. Strings are UTF-8.
 * - Out-parameters are marked [out]. On failure they are left in a documented state.
 * - Thread safety: a model is read-only once opened; const functions on it may be called
 *   from any number of threads at once. Non-const functions need external locking.
 *
 * Model files
 * -----------
 * A model is either a GGUF file (v2 or v3; tensor types F32, F16, BF16, Q4_0, Q4_1, Q5_0,
 * Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) or a Hugging Face checkpoint directory
 * (config.json with model.safetensors, or shards listed in model.safetensors.index.json;
 * dtypes F32, F16, BF16). Weights are memory-mapped and used in place, never copied.
 * The supported architecture is qwen2 (Arch-Router-1.5B is a Qwen2.5 fine-tune).
 */
#ifndef ARCHROUTER_H
#define ARCHROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ARCHROUTER_VERSION_MAJOR 0
#define ARCHROUTER_VERSION_MINOR 1
#define ARCHROUTER_VERSION_PATCH 0

/* ---------------------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------------------- */

/* The result of every fallible call. Values are stable: never renumbered, only appended. */
typedef enum ar_status {
    AR_OK = 0,
    AR_ERR_INVALID_ARG = 1,    /* a NULL pointer or out-of-range argument from the caller */
    AR_ERR_NOMEM = 2,          /* an allocation failed */
    AR_ERR_IO = 3,             /* a file could not be opened, read or mapped */
    AR_ERR_FORMAT = 4,         /* a file or document is malformed (truncated, corrupt, lying) */
    AR_ERR_UNSUPPORTED = 5,    /* well-formed, but a version, type or architecture we lack */
    AR_ERR_MODEL = 6,          /* the weights do not form a valid model (missing tensor, shape) */
    AR_ERR_NOT_FOUND = 7,      /* a named item (tensor, key) does not exist */
    AR_ERR_LIMIT = 8,          /* input exceeds a configured or built-in size limit */
    AR_ERR_INTERNAL = 9,       /* a bug in archrouter; please report it */
    AR_ERR_INVALID_INPUT = 10, /* user text that cannot be processed (invalid UTF-8) */
    AR_ERR_BUFFER_TOO_SMALL = 11, /* an output buffer is too small; the size needed is told */
    AR_ERR_NETWORK = 12,          /* a server could not be reached, or the transfer broke off */
    AR_ERR_AUTH = 13,             /* a server refused access (HTTP 401/403: token missing/wrong) */
    AR_ERR_CHECKSUM = 14,         /* downloaded bytes do not match the published sha256 */
    AR_ERR_CANCELLED = 15         /* the caller's callback asked to stop */
} ar_status;

/* A short, static English description of `status` ("malformed file", ...). Never NULL;
 * unknown values give "unknown status". */
const char *ar_strerror(ar_status status);

/* The library version as "MAJOR.MINOR.PATCH". Static storage. */
const char *ar_version(void);

/* ---------------------------------------------------------------------------------------
 * Tensor types
 * ------------------------------------------------------------------------------------- */

/* Element types of model tensors. The numeric values are GGUF's on-disk type ids. */
typedef enum ar_type {
    AR_TYPE_F32 = 0,
    AR_TYPE_F16 = 1,
    AR_TYPE_Q4_0 = 2,
    AR_TYPE_Q4_1 = 3,
    AR_TYPE_Q5_0 = 6,
    AR_TYPE_Q5_1 = 7,
    AR_TYPE_Q8_0 = 8,
    AR_TYPE_Q2_K = 10,
    AR_TYPE_Q3_K = 11,
    AR_TYPE_Q4_K = 12,
    AR_TYPE_Q5_K = 13,
    AR_TYPE_Q6_K = 14,
    AR_TYPE_BF16 = 30
} ar_type;

/* The name of a type ("Q4_K"), or NULL if archrouter does not support it. Static storage. */
const char *ar_type_name(ar_type type);

/* ---------------------------------------------------------------------------------------
 * Model
 * ------------------------------------------------------------------------------------- */

typedef struct ar_model ar_model;

typedef struct ar_model_params {
    /* Map the file(s) with mmap (default true). When false, or when mapping fails, the
     * file is read into memory instead. */
    bool use_mmap;
    /* Accept a GGUF file that holds no tensors, such as a vocabulary-only file: the model
     * then has metadata and a tokenizer but cannot be run (default false). A file that has
     * tensors is always checked completely. */
    bool allow_vocab_only;
    /* Refuse files larger than this many bytes (0 = no limit; default 0). */
    uint64_t max_file_bytes;
} ar_model_params;

/* The default parameters. */
ar_model_params ar_model_default_params(void);

/* Open a model: a GGUF file, a Hugging Face checkpoint directory, or a .safetensors file
 * whose directory holds config.json. The file is parsed and every tensor the forward pass
 * needs is checked for presence, type and shape before AR_OK is returned.
 * `params` may be NULL for defaults.
 * [out] *out: on AR_OK, the model, owned by the caller (release with ar_model_free()). On
 * failure, a handle in a failed state whose only use is ar_model_errmsg() and
 * ar_model_free(); or NULL if even that could not be allocated (AR_ERR_NOMEM) or `out`
 * itself is NULL (AR_ERR_INVALID_ARG). */
ar_status ar_model_open(const char *path, const ar_model_params *params, ar_model **out);

/* Release a model and unmap its files. NULL is a no-op. Every pointer obtained from the
 * model becomes invalid. */
void ar_model_free(ar_model *model);

/* The message of the last error this handle returned: what was wrong and where. Empty
 * string when there was none; "out of memory" for a NULL handle. Owned by the handle,
 * valid until the next call on it. */
const char *ar_model_errmsg(const ar_model *model);

/* What ar_model_get_info() reports. Fields are only ever appended. Strings are owned by
 * the model. Counts that the file does not provide are -1. */
typedef struct ar_model_info {
    const char *architecture; /* "qwen2" */
    const char *name;         /* general.name, or the directory name; "" when unknown */
    const char *format;       /* "gguf" or "safetensors" */
    const char *file_type;    /* "Q4_K_M", "F16", ... from general.file_type or the types
                                 of the matrices; "" when unknown */
    uint32_t format_version;  /* GGUF version; 0 for safetensors */
    bool vocab_only;          /* no weights: see ar_model_params.allow_vocab_only */

    /* Hyper-parameters (Qwen2). */
    int32_t n_layers, n_heads, n_kv_heads, head_dim;
    int32_t n_embd, n_ff, n_vocab, n_ctx_train;
    float rope_theta, rms_eps;
    bool tied_embeddings; /* lm_head shares the token embedding matrix */

    /* Weights. */
    uint64_t n_params;       /* elements of the weights the model uses (tied counted once) */
    uint64_t n_weight_bytes; /* bytes of those weights as stored */
    int32_t n_tensors;       /* tensors in the file(s) */
    uint64_t file_bytes;     /* total size of the file(s) */
    int32_t n_files;         /* 1, or the number of safetensors shards */

    /* Tokenizer, when the model carries one. */
    const char *tokenizer_model; /* "gpt2" (byte-level BPE), ...; "" when none */
    const char *tokenizer_pre;   /* pre-tokenizer name ("qwen2"); "" when none */
    int32_t n_tokens;            /* tokenizer vocabulary entries; -1 when none */
    int32_t bos_id, eos_id, pad_id;
    bool has_chat_template;

    double load_ms; /* wall time ar_model_open() took */
} ar_model_info;

/* Fill *info. [out] info: unchanged on error. */
ar_status ar_model_get_info(const ar_model *model, ar_model_info *info);

/* The text of token `id` from the model's vocabulary, or NULL when the model has no
 * vocabulary or `id` is out of range. */
const char *ar_model_token_text(const ar_model *model, int32_t id);

/* --- Tensors: for tools and tests (inspection, dequantization). ---------------------- */

typedef struct ar_tensor_info {
    const char *name;     /* as stored in the file (GGUF or Hugging Face naming) */
    ar_type type;         /* storage type */
    int32_t n_dims;       /* 1..4 */
    int64_t ne[4];        /* elements per dimension, innermost first (GGUF order); the
                             Hugging Face shape is the reverse. Unused dimensions are 1. */
    uint64_t n_elements;  /* product of ne */
    uint64_t n_bytes;     /* bytes of stored data */
    uint64_t file_offset; /* absolute byte offset of the data in its file */
} ar_tensor_info;

/* Number of tensors in the model file(s). */
int32_t ar_model_n_tensors(const ar_model *model);

/* Describe tensor `index` (0 <= index < ar_model_n_tensors()). [out] info. */
ar_status ar_model_tensor_info(const ar_model *model, int32_t index, ar_tensor_info *info);

/* The index of the tensor named `name`, or -1 if there is none. */
int32_t ar_model_tensor_find(const ar_model *model, const char *name);

/* Convert tensor `index` to float32, row-major (the innermost dimension contiguous),
 * with the scalar reference dequantizer. `dst` must hold `dst_len` floats, at least the
 * tensor's n_elements; the function writes n_elements values. */
ar_status ar_model_tensor_to_f32(const ar_model *model, int32_t index, float *dst,
                                 uint64_t dst_len);

/* --- Metadata: every key/value of a GGUF file, or the fields of config.json. --------- */

/* Number of metadata entries. */
int32_t ar_model_meta_count(const ar_model *model);

/* The key of entry `index`, or NULL if out of range. */
const char *ar_model_meta_key(const ar_model *model, int32_t index);

/* Render the value of entry `index` as text into buf (NUL-terminated, truncated to fit):
 * numbers and strings as themselves, arrays as "[type x count] first elements ...".
 * Returns the length the full text would have (like snprintf), or -1 if out of range. */
int64_t ar_model_meta_value_text(const ar_model *model, int32_t index, char *buf, size_t buf_size);

/* The string value of metadata `key`, or NULL when absent or not a string. */
const char *ar_model_meta_str(const ar_model *model, const char *key);

/* ---------------------------------------------------------------------------------------
 * Tokenizer
 *
 * The router model's tokenizer: Qwen2 byte-level BPE (NFC normalization, the Qwen2
 * pre-tokenizer, merges by rank), read from a GGUF file's tokenizer.* metadata or from a
 * Hugging Face tokenizer.json. A tokenizer is read-only once opened: ar_tokenize() and the
 * other const functions may run on many threads at once.
 *
 *     ar_tokenizer *tok = NULL;
 *     if (ar_tokenizer_from_model(model, NULL, &tok) != AR_OK) { ...ar_tokenizer_errmsg(tok) }
 *     int32_t ids[256];
 *     size_t n;
 *     ar_status st = ar_tokenize(tok, text, strlen(text), 0, ids, 256, &n);
 *     ar_tokenizer_free(tok);
 * ------------------------------------------------------------------------------------- */

typedef struct ar_tokenizer ar_tokenizer;

typedef struct ar_tokenizer_params {
    /* Longest text ar_tokenize() accepts, in bytes (default 16 MiB); longer input gives
     * AR_ERR_LIMIT. */
    size_t max_input_bytes;
    /* Memory for a cache of words already encoded (default 4 MiB; 0 disables it). It is
     * shared by all threads using the tokenizer and never changes results. */
    size_t cache_bytes;
} ar_tokenizer_params;

ar_tokenizer_params ar_tokenizer_default_params(void);

/* The tokenizer of an open model: its GGUF tokenizer.* metadata, or the tokenizer.json in
 * its checkpoint directory. The tokenizer does not keep a reference to the model.
 * [out] *out: as ar_model_open() (a failed handle carries the message). */
ar_status ar_tokenizer_from_model(const ar_model *model, const ar_tokenizer_params *params,
                                  ar_tokenizer **out);

/* A tokenizer from a file: a tokenizer.json, a GGUF file (a vocabulary-only one will do),
 * or a checkpoint directory holding tokenizer.json. [out] *out: as ar_model_open(). */
ar_status ar_tokenizer_open(const char *path, const ar_tokenizer_params *params,
                            ar_tokenizer **out);

/* Release. NULL is a no-op. */
void ar_tokenizer_free(ar_tokenizer *tok);

/* The message of the last error of opening this tokenizer; "out of memory" for NULL. */
const char *ar_tokenizer_errmsg(const ar_tokenizer *tok);

/* Flags of ar_tokenize(). */
enum {
    /* Match added tokens written in the text ("<|im_start|>" becomes its single id).
     * Use it for text the program writes itself; never for text a user sent, so that no
     * one can inject control tokens. Without it such text is ordinary characters. */
    AR_TOKENIZE_SPECIAL = 1u << 0,
    /* Replace each byte that does not start a valid UTF-8 sequence with U+FFFD instead of
     * failing. */
    AR_TOKENIZE_REPLACE_INVALID = 1u << 1
};

/* Encode `len` bytes of UTF-8 text into token ids, exactly as the reference tokenizer.
 * On AR_OK, *n_ids is the number of ids written to ids[0..cap).
 * On AR_ERR_BUFFER_TOO_SMALL, *n_ids is the number of ids needed (nothing useful is in ids).
 * On AR_ERR_INVALID_INPUT (text not UTF-8, without AR_TOKENIZE_REPLACE_INVALID), *n_ids is
 * the byte offset of the first invalid byte.
 * AR_ERR_LIMIT: len exceeds max_input_bytes. AR_ERR_NOMEM: scratch space. */
ar_status ar_tokenize(const ar_tokenizer *tok, const char *text, size_t len, uint32_t flags,
                      int32_t *ids, size_t cap, size_t *n_ids);

/* Decode ids back to the bytes they stand for, concatenated (a piece may end inside a
 * UTF-8 sequence; the whole output is the original text for ids that came from it).
 * Writes at most cap bytes (no NUL); *len is the full length. AR_ERR_BUFFER_TOO_SMALL when
 * it did not fit, AR_ERR_INVALID_ARG for an id out of range. */
ar_status ar_detokenize(const ar_tokenizer *tok, const int32_t *ids, size_t n_ids, char *buf,
                        size_t cap, size_t *len);

/* The bytes token `id` stands for (not NUL-terminated), or NULL when out of range. */
const char *ar_token_bytes(const ar_tokenizer *tok, int32_t id, size_t *len);

/* The token as written in the vocabulary (byte-level BPE alphabet: "Ġhello"; added
 * tokens as themselves), NUL-terminated, or NULL when out of range. */
const char *ar_token_text(const ar_tokenizer *tok, int32_t id);

/* Number of token ids (the highest id + 1). */
int32_t ar_tokenizer_n_tokens(const ar_tokenizer *tok);

/* The id of the token whose vocabulary text is exactly `text` (added tokens included), or
 * -1. */
int32_t ar_tokenizer_find(const ar_tokenizer *tok, const char *text);

/* Special token ids from the tokenizer's metadata, -1 when not given. */
typedef enum ar_special_token {
    AR_TOKEN_BOS = 0,
    AR_TOKEN_EOS = 1,
    AR_TOKEN_PAD = 2
} ar_special_token;
int32_t ar_tokenizer_special(const ar_tokenizer *tok, ar_special_token which);

/* The chat template (Jinja text) shipped with the tokenizer, or NULL. */
const char *ar_tokenizer_chat_template(const ar_tokenizer *tok);

/* ---------------------------------------------------------------------------------------
 * Engine
 *
 * Runs the model on the CPU. An engine holds what all sequences share: the model's
 * weights (used in place), compute kernels for this CPU and a thread pool. A sequence
 * (ar_seq) is one conversation's state: its KV cache and positions. Many sequences can
 * share one engine; their evaluations take turns on the engine's threads.
 *
 *     ar_engine *eng = NULL;
 *     ar_engine_new(model, NULL, &eng);               // the model must outlive it
 *     ar_seq *seq = NULL;
 *     ar_seq_new(eng, NULL, &seq);
 *     float *logits = malloc(ar_engine_n_vocab(eng) * sizeof(float));
 *     ar_seq_eval(seq, ids, n_ids, AR_LOGITS_LAST, logits);   // prefill
 *     ar_seq_eval(seq, &next, 1, AR_LOGITS_LAST, logits);     // one more token
 *     ar_seq_free(seq);
 *     ar_engine_free(eng);
 * ------------------------------------------------------------------------------------- */

typedef struct ar_engine ar_engine;
typedef struct ar_seq ar_seq;

/* How products with quantized weights are computed (F32/F16/BF16 weights always compute in
 * float32). The weights are used as stored in every case; what changes is how exactly the
 * activations enter the product. */
typedef enum ar_precision {
    /* Activations rounded to 8 bits per block, plus the rounding error itself rounded to 8
     * bits: two integer products, about 16-bit activations. On the test models within
     * ~2e-3 of the exact result (a few hundred times closer than llama.cpp). Default. */
    AR_PRECISION_ACCURATE = 0,
    /* One 8-bit rounding of the activations, as llama.cpp does: the fastest, with the same
     * kind of error as llama.cpp (a few tenths in log-sum-exp on the test models). */
    AR_PRECISION_FAST = 1,
    /* Weights dequantized to float32 and multiplied in float32: within float32 rounding of
     * the exact result. */
    AR_PRECISION_FLOAT32 = 2
} ar_precision;

typedef struct ar_engine_params {
    int32_t n_threads;      /* threads in all, the caller's included; 0 = physical cores */
    int32_t cpu;            /* kernel tier: -1 best available (default), 0 scalar, 1 AVX2,
                               2 AVX-512; a tier the CPU lacks gives AR_ERR_UNSUPPORTED */
    ar_precision precision; /* default AR_PRECISION_ACCURATE */
    /* Multiply the model's weights where they are (its file mapping) instead of copying the
     * weight matrices into the engine's memory in 2 MB pages (default false: copied when the
     * system has transparent huge pages; the file's pages are given back, so the copy costs
     * load time, not memory). F16 and BF16 matrices in the fast precision are always
     * repacked (into 16-bit lanes, 6% larger than float16). */
    bool in_place;
} ar_engine_params;

ar_engine_params ar_engine_default_params(void);

/* An engine for `model` (not vocabulary-only). The model is borrowed: it must outlive the
 * engine. [out] *out: as ar_model_open() (a failed handle carries the message). */
ar_status ar_engine_new(const ar_model *model, const ar_engine_params *params, ar_engine **out);

/* Release. Every sequence of the engine must have been freed first. NULL is a no-op. */
void ar_engine_free(ar_engine *engine);

const char *ar_engine_errmsg(const ar_engine *engine);

/* Vocabulary size: the length of one row of logits. */
int32_t ar_engine_n_vocab(const ar_engine *engine);

/* Threads the engine computes with. */
int32_t ar_engine_n_threads(const ar_engine *engine);

/* The kernel tier in use: "scalar", "avx2" or "avx512". */
const char *ar_engine_cpu_name(const ar_engine *engine);

/* Storage of the KV cache. */
typedef enum ar_kv_type { AR_KV_F32 = 0, AR_KV_F16 = 1 } ar_kv_type;

typedef struct ar_seq_params {
    int32_t n_ctx;      /* positions the sequence can hold (default 4096, at most the model's
                           training context) */
    int32_t n_batch;    /* tokens per forward chunk (default 256); longer inputs are run in
                           chunks of this size */
    ar_kv_type kv_type; /* default AR_KV_F32 */
} ar_seq_params;

ar_seq_params ar_seq_default_params(void);

/* A new, empty sequence on `engine`. [out] *out: as ar_model_open(). */
ar_status ar_seq_new(ar_engine *engine, const ar_seq_params *params, ar_seq **out);

void ar_seq_free(ar_seq *seq);

/* The message of the last error this sequence returned. */
const char *ar_seq_errmsg(const ar_seq *seq);

/* Positions already in the sequence (its KV cache). */
int32_t ar_seq_n_past(const ar_seq *seq);

int32_t ar_seq_n_ctx(const ar_seq *seq);

/* Which logits ar_seq_eval() writes. */
typedef enum ar_logits {
    AR_LOGITS_NONE = 0, /* none: only fill the KV cache */
    AR_LOGITS_LAST = 1, /* n_vocab floats: after the last token */
    AR_LOGITS_ALL = 2   /* n * n_vocab floats: after every token, in order */
} ar_logits;

/* Append n tokens at positions n_past .. n_past + n - 1 and write the requested logits.
 * Results are the same whether tokens come all at once or in pieces. Errors: an id outside
 * the vocabulary, n < 1, or n_past + n > n_ctx give AR_ERR_INVALID_ARG with a message, and
 * the sequence is unchanged. */
ar_status ar_seq_eval(ar_seq *seq, const int32_t *tokens, int32_t n, ar_logits which,
                      float *logits);

/* As ar_seq_eval() with AR_LOGITS_LAST, but only the logits of the n_ids vocabulary ids
 * `ids` are computed (out[i] = logit of ids[i]): a decoder that allows a few tokens skips
 * the rest of the output layer. The values equal those of the full computation. */
ar_status ar_seq_eval_select(ar_seq *seq, const int32_t *tokens, int32_t n, const int32_t *ids,
                             int32_t n_ids, float *out);

/* As ar_seq_eval_select(), after several of the tokens: out[k * n_ids + i] = logit of ids[i]
 * after tokens[0 .. at[k]], for the n_at (1..AR_SELECT_AT_MAX) token indices at[], which
 * must be ascending and below n. All n tokens are appended, as by ar_seq_eval(). (A decoder
 * that runs a guessed continuation with the prompt learns in one pass both whether the
 * guess was right and what follows it.) The values equal those of the full computation. */
#define AR_SELECT_AT_MAX 8
ar_status ar_seq_eval_select_at(ar_seq *seq, const int32_t *tokens, int32_t n, const int32_t *at,
                                int32_t n_at, const int32_t *ids, int32_t n_ids, float *out);

/* Teacher forcing of several continuations in one pass: n tokens form a tree hanging off
 * the sequence's end. Token i continues parents[i] (an earlier token of the tree, or -1 for
 * the sequence's last position), sits at position n_past + depth(i) and attends to the
 * sequence and to its own ancestors only. Writes n * n_vocab logits (row i: after token
 * i), the same values as evaluating each root-to-token path on its own. The sequence is
 * left as it was (n_past unchanged). Needs n <= n_batch and n_past + n <= n_ctx. */
ar_status ar_seq_eval_tree(ar_seq *seq, const int32_t *tokens, const int32_t *parents, int32_t n,
                           float *logits);

/* Forget every position from n_past on (0 empties the sequence). */
ar_status ar_seq_truncate(ar_seq *seq, int32_t n_past);

/* Make dst hold the first n positions of src (a cached prompt prefix, shared by many
 * requests): copies n positions of the KV cache. Both sequences must belong to the same
 * engine, with the same KV type, and dst must have room for n positions. */
ar_status ar_seq_copy(ar_seq *dst, const ar_seq *src, int32_t n);

/* ---------------------------------------------------------------------------------------
 * Router
 *
 * Arch-Router routing: given route policies (a name and a plain-language description
 * each) and a conversation, the router model names the route that fits the user's latest
 * intent, or "other". The router builds the exact Arch-Router prompt, runs it on an
 * engine, and decodes only valid answers ({"route": "NAME"} for a configured route or
 * "other"), stopping as soon as the route is decided.
 *
 *     ar_router *r = NULL;
 *     ar_router_new(engine, tok, NULL, &r);       // engine and tokenizer outlive it
 *     ar_route routes[] = {{"code_generation", "Writing new functions ...", "openai/gpt-4o"},
 *                          {"travel_booking", "Booking flights ...", "openai/gpt-4o-mini"}};
 *     ar_router_set_routes(r, routes, 2);
 *     ar_message conv[] = {{"user", "Book me a flight to Tokyo"}};
 *     ar_route_result res;
 *     if (ar_router_route(r, conv, 1, &res) == AR_OK)
 *         printf("%s -> %s (p=%.2f)\n", res.route ? res.route : "(none)",
 *                res.model ? res.model : "(default)", res.probability);
 *     ar_route_result_clear(&res);
 *     ar_router_free(r);
 *
 * The fixed head of the prompt (chat header, instructions and the routes) is the same for
 * every request with the same routes: its KV cache is kept in a memory-bounded LRU (the
 * prefix cache), and a request only runs its conversation and the prompt's tail.
 *
 * Thread safety: every function may be called from any thread; ar_router_route() calls
 * on one router run one at a time (they share the engine's threads), and
 * ar_router_set_routes() waits for a running one to finish.
 * ------------------------------------------------------------------------------------- */

typedef struct ar_router ar_router;

/* The two real renderings of the Arch-Router prompt (DESIGN.md): the model card's (JSON as
 * Python's json.dumps writes it, blank lines around the JSON; the authors' recommendation)
 * and Katanemo archgw's (compact JSON, raw UTF-8). */
typedef enum ar_prompt_layout { AR_LAYOUT_CARD = 0, AR_LAYOUT_ARCHGW = 1 } ar_prompt_layout;

/* One route policy. The router copies the strings. */
typedef struct ar_route {
    const char *name;        /* unique, non-empty, not "other" (the answer for no match) */
    const char *description; /* what requests belong to it, in plain language */
    const char *model;       /* the model this route sends to; NULL when none is mapped */
} ar_route;

/* One message of a conversation, as in the OpenAI chat API: role "user", "assistant",
 * "system", "developer", "tool" or "function"; content UTF-8 text (NULL = none). */
typedef struct ar_message {
    const char *role;
    const char *content;
} ar_message;

typedef struct ar_router_params {
    ar_prompt_layout layout;         /* default AR_LAYOUT_CARD */
    const char *system_prompt;       /* NULL: the default system prompt of the model's chat
                                        template (copied) */
    int32_t max_conversation_tokens; /* budget of the conversation part (default 2048): the
                                        newest messages that fit are kept */
    float min_confidence;            /* below this probability the result is "no route"
                                        (default 0) */
    bool scores;                     /* compute every route's probability (one extra
                                        forward pass over all answers; default false) */
    size_t prefix_cache_bytes;       /* memory for cached prompt heads (default 256 MiB;
                                        0 disables the cache) */
    int32_t n_ctx;                   /* longest prompt in tokens (default 4096) */
    ar_kv_type kv_type;              /* default AR_KV_F32 */
} ar_router_params;

ar_router_params ar_router_default_params(void);

/* A router on `engine`, reading text with `tok` (both must outlive it). The chat template
 * markers (<|im_start|>, <|im_end|>) must be tokens of `tok`. [out] *out: as
 * ar_model_open(). */
ar_status ar_router_new(ar_engine *engine, const ar_tokenizer *tok, const ar_router_params *params,
                        ar_router **out);

void ar_router_free(ar_router *router);

/* The message of the last error this router returned. */
const char *ar_router_errmsg(const ar_router *router);

/* Replace the route set (copied; at most 1024 routes). Errors name the offending route:
 * empty or duplicate names, the reserved name "other", empty descriptions, text that is
 * not UTF-8 or names with control characters. On error the previous routes stay. */
ar_status ar_router_set_routes(ar_router *router, const ar_route *routes, int32_t n);

/* The result of one routing decision. Strings point into the router's route set and stay
 * valid until the routes are replaced or the router is freed; `scores` is owned by the
 * result (ar_route_result_clear frees it). */
typedef struct ar_route_result {
    const char *route;     /* the chosen route's name; NULL for none: the model answered
                              "other", or the probability is below min_confidence */
    const char *answer;    /* what the model decided: a route name or "other" */
    const char *model;     /* the chosen route's model (NULL for none or unmapped) */
    int32_t route_index;   /* index in the route set, -1 for none */
    float probability;     /* with scores: the answer's share of the total probability of
                              all answers; without: the probability, among the allowed
                              tokens, of the token that decided the route */
    int32_t n_scores;      /* n_routes + 1 with scores (the last is "other"), else 0 */
    float *scores;         /* probability of each route, then of "other"; sums to 1 */
    double *logprobs;      /* log-probability of each answer's tokens given the prompt,
                              {"route": "NAME"}<|im_end|> (teacher forcing), same order */
    int32_t prompt_tokens; /* tokens of the whole prompt */
    int32_t cached_tokens; /* of those, taken from the prefix cache */
    int32_t messages_used; /* conversation messages in the prompt after the rules */
    bool truncated;        /* older messages dropped or the last one shortened */
    int32_t decode_steps;  /* forward passes after the prompt (answer tokens) */
    double tokenize_ms, prefill_ms, decode_ms, scores_ms, total_ms;
    bool invalid_answer; /* remote routers: the model's text named no route and not
                            "other" (unparsable, or an unknown name); route is NULL and
                            answer "other". Never set by the local router. */
} ar_route_result;

/* Route a conversation (n messages, oldest first). The rules of Arch-Router: system,
 * developer, tool and function messages and messages without text are left out; the
 * newest messages within max_conversation_tokens are kept (a single message longer than
 * that keeps its head and tail). Errors: no routes set, no user message, an unknown role,
 * text that is not UTF-8 (AR_ERR_INVALID_INPUT, naming the message), a prompt longer
 * than n_ctx (AR_ERR_LIMIT). */
ar_status ar_router_route(ar_router *router, const ar_message *msgs, int32_t n,
                          ar_route_result *out);

/* Free what a result owns and zero it (safe on a zeroed or already cleared result). */
void ar_route_result_clear(ar_route_result *res);

/* The prompt ar_router_route() would run for this conversation: its text (malloc'd,
 * NUL-terminated, *text_out; free() it) and, when ids_out is not NULL, its token ids
 * (malloc'd; free() them) and their count. For --explain and debugging. On a remote router
 * the text is the user message it sends (no chat template) and the ids are those of that
 * text (*ids_out NULL and *n_ids 0 without a tokenizer). */
ar_status ar_router_prompt(ar_router *router, const ar_message *msgs, int32_t n, char **text_out,
                           int32_t **ids_out, int32_t *n_ids);

/* ---------------------------------------------------------------------------------------
 * Remote router backend
 *
 * The same router with the model served elsewhere: any OpenAI-compatible chat completions
 * endpoint (Arch-Router on vLLM, llama.cpp server or Ollama; or a general LLM such as
 * GPT-4o used as a router). ar_router_set_routes(), ar_router_route(), ar_router_prompt()
 * and ar_router_free() work unchanged on it.
 *
 *     ar_remote_params rp = ar_remote_default_params();
 *     rp.base_url = "http://gpu-host:8000/v1";
 *     rp.model = "katanemo/Arch-Router-1.5B";
 *     ar_router *r = NULL;
 *     if (ar_router_new_remote(&rp, &r) != AR_OK) { ... ar_router_errmsg(r) ... }
 *
 * Each decision POSTs {base_url}/chat/completions with two messages: the system prompt and,
 * as the user message, the Arch-Router prompt's text (exactly what the local router puts
 * between the chat template's user header and <|im_end|>; ar_router_prompt() returns it),
 * temperature 0 and a small max_tokens. Where the server takes them it also sends vLLM's
 * guided_choice and llama.cpp's grammar (the answer is then always a valid one) and asks
 * for logprobs; a server that rejects one of these with HTTP 400 naming the field gets the
 * request again without it, and the router stops sending that field. 429, 5xx and failed
 * connections are retried with exponential backoff. The answer is read tolerantly
 * ({"route": ...} in double or single quotes, in ```json fences, with text around it, or
 * the bare name); an answer that names no route and not "other" is "no route" with
 * invalid_answer set, never an error. probability is exp(sum of the answer tokens'
 * log-probabilities) when the server returns them, else 1. Result fields that only the
 * local engine measures (scores, cached_tokens, prefill/decode times) are zero;
 * prompt_tokens and decode_steps come from the server's usage block when it has one.
 *
 * Token budget: with a tokenizer (the router model's tokenizer.json, optional) the
 * conversation is cut to max_conversation_tokens exactly as locally; without one each
 * message counts bytes / 4 tokens, as Katanemo's archgw estimates.
 *
 * Thread safety: decisions run in parallel on one remote router (the HTTP exchange runs
 * outside its lock). A decision's strings point into the route set as usual, so do not
 * replace the routes while another thread is routing.
 * ------------------------------------------------------------------------------------- */

typedef struct ar_remote_params {
    const char *base_url;            /* "http://host:8000/v1" (required; copied) */
    const char *model;               /* the served model's name (required; copied) */
    const char *api_key;             /* sent as "Authorization: Bearer KEY"; NULL: none */
    int32_t timeout_ms;              /* per HTTP request (default 10000; 0: no limit) */
    int32_t max_retries;             /* after 429, 5xx or a failed connection (default 2) */
    ar_prompt_layout layout;         /* default AR_LAYOUT_CARD */
    const char *system_prompt;       /* NULL: Qwen2.5's default system prompt, which
                                        Arch-Router was trained with; "": none */
    int32_t max_conversation_tokens; /* default 2048 */
    float min_confidence;            /* default 0; compared with probability */
    const ar_tokenizer *tok;         /* optional, for exact token budgets (outlives the
                                        router); NULL: bytes / 4 */
    bool constrained;                /* send guided_choice and grammar (default true) */
    bool logprobs;                   /* ask for logprobs (default true) */
} ar_remote_params;

ar_remote_params ar_remote_default_params(void);

/* A router whose decisions are made by a remote server (nothing is contacted yet).
 * [out] *out: as ar_model_open(): on failure it may hold a router whose errmsg says why. */
ar_status ar_router_new_remote(const ar_remote_params *params, ar_router **out);

/* ---------------------------------------------------------------------------------------
 * Configuration and conversations
 *
 * A routes configuration file (YAML) in Katanemo archgw's format, unchanged, or
 * archrouter's native form (docs/config.md). The router's settings and the routes come
 * out of it ready for ar_router_new() and ar_router_set_routes().
 * ------------------------------------------------------------------------------------- */

typedef struct ar_config ar_config;

/* Load and validate a configuration file. On error *out is NULL and errbuf holds
 * "FILE:LINE:COL: message". */
ar_status ar_config_load(const char *path, ar_config **out, char *errbuf, size_t errcap);

void ar_config_free(ar_config *cfg);

/* The routes in file order (at most cap written), pointing into cfg; each route's model is
 * the provider model it maps to ("provider/id"), NULL when none. Returns the number of
 * routes (which may exceed cap). */
int32_t ar_config_routes(const ar_config *cfg, ar_route *out, int32_t cap);

/* The router settings of the file's `archrouter.router` section (defaults where absent);
 * system_prompt points into cfg. */
ar_router_params ar_config_router_params(const ar_config *cfg);

/* When the file's archrouter.router.backend is `remote`: fill *out with its base_url,
 * remote_model, timeout_ms and prompt settings (strings point into cfg; api_key is read
 * now from the environment variable named by api_key_env, NULL when unset) and return
 * true. False (and *out untouched) for the local backend. */
bool ar_config_router_remote(const ar_config *cfg, ar_remote_params *out);

/* The router model named in the file (a path or a hub reference), or NULL; the number of
 * threads it asks for (0: default); the precision it asks for (an ar_precision, or -1 when
 * the file does not say). */
const char *ar_config_router_model(const ar_config *cfg);
int32_t ar_config_router_threads(const ar_config *cfg);
int32_t ar_config_router_precision(const ar_config *cfg);

/* The model of the `default: true` provider ("provider/id"), or NULL. */
const char *ar_config_default_model(const ar_config *cfg);

/* Whether the gateway this file configures listens beyond the loopback interface without
 * any client API keys (anyone who can reach the port may spend the providers' keys). */
bool ar_config_server_open_to_network(const ar_config *cfg);

/* Parse an OpenAI chat conversation: a `messages` array, or a chat completions request
 * object holding one. Content may be a string or an array of parts (text parts are joined
 * with "\n", others dropped). On AR_OK, *msgs is one malloc'd block (free() it) holding
 * *n messages and their strings. Errors name the message and field in errbuf. */
ar_status ar_conversation_parse(const char *json, size_t len, ar_message **msgs, int32_t *n,
                                char *errbuf, size_t errcap);

/* ---------------------------------------------------------------------------------------
 * Model download (Hugging Face hub)
 *
 *     ar_pull_params pp = ar_pull_default_params();
 *     ar_pull_result res;
 *     char err[512];
 *     if (ar_pull(NULL, &pp, &res, err, sizeof err) != AR_OK) { fprintf(stderr, "%s\n", err); }
 *     else open res.path with ar_model_open()
 *
 * A reference is "OWNER/NAME[@REVISION][:FILE]"; NULL or "" means the default
 * AR_PULL_DEFAULT_REPO with AR_PULL_DEFAULT_FILE, a reference without ":FILE" gets
 * AR_PULL_DEFAULT_FILE, and the revision defaults to "main". The file comes from
 * ENDPOINT/OWNER/NAME/resolve/REVISION/FILE (redirects are followed; the token is only sent
 * to the endpoint's own scheme, host and port).
 *
 * Cache: CACHE/models/OWNER--NAME/FILE for revision main, CACHE/models/OWNER--NAME@REV/FILE
 * otherwise (a '/' in REV is written as "--"); FILE.sha256 beside it holds the verified
 * sha256 ("HEX  FILE", as sha256sum prints it). A file is only moved to its final name once
 * complete and verified, so its presence means "done". Partial downloads are FILE.part and
 * are resumed (HTTP Range) by the next pull.
 * ------------------------------------------------------------------------------------- */

#define AR_PULL_DEFAULT_REPO     "katanemo/Arch-Router-1.5B.gguf"
#define AR_PULL_DEFAULT_FILE     "Arch-Router-1.5B-Q4_K_M.gguf"
#define AR_PULL_DEFAULT_ENDPOINT "https://huggingface.co"
#define AR_PULL_PATH_MAX         4096

/* What ar_pull() is doing when it calls the progress callback. */
typedef enum ar_pull_phase {
    AR_PULL_CHECKING = 0,   /* re-hashing a partial file before resuming it */
    AR_PULL_DOWNLOADING = 1 /* receiving bytes */
} ar_pull_phase;

typedef struct ar_pull_progress {
    ar_pull_phase phase;
    uint64_t done;    /* bytes of the file done so far (resumed bytes included) */
    uint64_t total;   /* size of the whole file; 0 while unknown */
    uint64_t resumed; /* bytes that were already on disk when this transfer started */
} ar_pull_progress;

typedef struct ar_pull_params {
    /* Cache folder. NULL: $ARCHROUTER_CACHE, else $XDG_CACHE_HOME/archrouter, else
     * $HOME/.cache/archrouter (environment read at call time). */
    const char *cache_dir;
    /* Hub address. NULL: $HF_ENDPOINT, else AR_PULL_DEFAULT_ENDPOINT. */
    const char *endpoint;
    /* Access token sent as "Authorization: Bearer ..." to the endpoint only. NULL: $HF_TOKEN
     * (unset or empty: no token). Never written into messages. */
    const char *token;
    /* A huggingface_hub cache ("HUB/models--OWNER--NAME/snapshots/COMMIT/FILE") searched
     * before downloading. NULL: $HF_HUB_CACHE, else $HF_HOME/hub, else
     * $XDG_CACHE_HOME/huggingface/hub, else $HOME/.cache/huggingface/hub. */
    const char *hf_hub_cache;
    bool use_hf_cache;      /* search hf_hub_cache (default true) */
    bool force;             /* download again even if the file is cached (default false) */
    long connect_timeout_s; /* default 30 */
    long low_speed_bytes;   /* abort when slower than this many bytes/s ... (default 1024) */
    long low_speed_time_s;  /* ... for this many seconds (default 60) */
    int max_redirects;      /* default 10 */
    /* Called while checking and downloading (often: throttle drawing yourself). Return
     * nonzero to stop: ar_pull() then returns AR_ERR_CANCELLED and keeps FILE.part. */
    int (*progress)(void *user, const ar_pull_progress *p);
    void *user;
} ar_pull_params;

typedef struct ar_pull_result {
    char path[AR_PULL_PATH_MAX]; /* the local file */
    char sha256[65];             /* lowercase hex; "" when the hub published none */
    uint64_t size;               /* bytes of the file */
    uint64_t bytes_received;     /* body bytes received over the network by this call */
    uint64_t resumed_from;       /* offset the download resumed at (0: from the start) */
    bool downloaded;             /* false: it was already in a cache */
    bool from_hf_cache;          /* path lies in the huggingface_hub cache */
} ar_pull_result;

ar_pull_params ar_pull_default_params(void);

/* Download the file `ref` names into the cache, unless it is already there (in the
 * archrouter cache, or in the huggingface_hub cache when use_hf_cache), and verify it
 * against the sha256 the hub publishes (X-Linked-Etag / ETag) when there is one.
 * [out] *result: filled on AR_OK; zeroed otherwise.
 * errbuf (may be NULL): on failure, a message that says what went wrong and what to do.
 * Errors: AR_ERR_INVALID_ARG (malformed reference), AR_ERR_NETWORK (unreachable, transfer
 * broke off, unexpected HTTP status: run again to resume), AR_ERR_AUTH (HTTP 401/403),
 * AR_ERR_NOT_FOUND (HTTP 404), AR_ERR_CHECKSUM (the partial file is deleted), AR_ERR_IO
 * (cache not writable, disk full), AR_ERR_CANCELLED, AR_ERR_NOMEM. */
ar_status ar_pull(const char *ref, const ar_pull_params *params, ar_pull_result *result,
                  char *errbuf, size_t errcap);

/* Where a model is on disk, without any network access. If ref_or_path names an existing
 * file or folder it is copied as is; otherwise it is read as a hub reference (as ar_pull;
 * NULL means the default) and looked up in the caches ar_pull() uses.
 * [out] path_out: the path, NUL-terminated (AR_ERR_BUFFER_TOO_SMALL if cap is too small).
 * Errors: AR_ERR_NOT_FOUND (not a file and not downloaded: the message says which command
 * downloads it), AR_ERR_INVALID_ARG. */
ar_status ar_model_resolve(const char *ref_or_path, const ar_pull_params *params, char *path_out,
                           size_t cap, char *errbuf, size_t errcap);

/* ---------------------------------------------------------------------------------------
 * Gateway
 *
 * An OpenAI-compatible HTTP proxy (docs/gateway.md) that routes every chat request with a
 * router and forwards it to the chosen provider of a configuration, streaming included.
 *
 *     ar_gateway *gw = NULL;
 *     char err[512];
 *     if (ar_gateway_start(cfg, router, 2, &gw, err, sizeof err) != AR_OK) ...
 *     printf("listening on port %d\n", ar_gateway_port(gw));
 *     ... wait for SIGTERM ...
 *     ar_gateway_stop(gw, 10000);   // finish in-flight requests for up to 10 s
 *
 * The configuration and the router are borrowed and must outlive the gateway; the router's
 * routes must be the configuration's (ar_config_routes), already set. The gateway runs its
 * own threads; none of these functions may be called from them.
 * ------------------------------------------------------------------------------------- */

typedef struct ar_gateway ar_gateway;

/* Start serving cfg's archrouter.server listener. router: NULL turns routing off (then a
 * request's `model` picks the provider); it must not be NULL when cfg has routes.
 * access_log_fd: where JSON-lines access log records go (-1: nowhere).
 * Errors (errbuf): AR_ERR_FORMAT (no providers, a provider without a known base_url, an
 * access key variable that is not set), AR_ERR_IO (cannot listen), AR_ERR_INVALID_ARG,
 * AR_ERR_NOMEM. */
ar_status ar_gateway_start(const ar_config *cfg, ar_router *router, int access_log_fd,
                           ar_gateway **out, char *errbuf, size_t errcap);

/* The TCP port the gateway listens on (the one chosen when the config says port 0). */
int32_t ar_gateway_port(const ar_gateway *gw);

/* Graceful stop: stop accepting connections, let requests in flight finish for up to
 * drain_ms milliseconds, cancel the rest, free the gateway. NULL is a no-op. */
void ar_gateway_stop(ar_gateway *gw, int32_t drain_ms);

#ifdef __cplusplus
}
#endif

#endif /* ARCHROUTER_H */
