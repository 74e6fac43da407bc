/*
 * model.h - the inside of ar_model: the read-only model shared by every sequence.
 *
 * Owns the file mappings, the parsed container (GGUF, or safetensors shards + config.json),
 * a format-neutral tensor table indexed by name, the Qwen2 hyper-parameters and bound
 * weights, and the strings ar_model_info points at. Nothing here changes after
 * ar_model_open() returns, so the engine may read it from many threads.
 */
#ifndef AR_MODEL_MODEL_H
#define AR_MODEL_MODEL_H

#include "archrouter.h"
#include "base/err.h"
#include "base/mapfile.h"
#include "model/gguf.h"
#include "model/hfdir.h"
#include "model/qwen2.h"
#include "model/safetensors.h"
#include "model/tensor.h"

struct ar_model {
    ar_err err;  /* last error message */
    bool failed; /* a handle from a failed open: only errmsg and free work */
    ar_model_params params;
    char *path;
    const char *format; /* "gguf" / "safetensors" (static) */

    int n_files;
    ar_mapfile *files;
    ar_gguf gguf;       /* GGUF: the container */
    ar_hf_dir hf;       /* HF: the directory, config.json, index */
    ar_safetensors *st; /* HF: one per shard */

    int32_t n_tensors;
    ar_tensor *tensors;  /* file order (shard by shard) */
    ar_tensor **by_name; /* sorted by name */

    ar_qwen2_hparams hp;
    ar_qwen2_weights w;
    bool vocab_only;

    /* Metadata: GGUF key/values, or config.json's top-level fields. */
    int32_t n_meta;
    const char **meta_keys; /* HF only; GGUF keys are in gguf.kv */
    char **meta_strs;       /* GGUF only: NUL-terminated copies of string values, else NULL */

    /* Vocabulary (GGUF tokenizer.ggml.tokens), NUL-terminated texts in one pool. */
    int32_t n_tokens;
    char *vocab_pool;
    uint64_t *vocab_off;
    int32_t bos_id, eos_id, pad_id;
    bool has_chat_template;

    char *arch, *name, *file_type, *tok_model, *tok_pre;
    ar_model_info info;
};

/* Open a model from bytes in memory, which must outlive it (fuzzing and tests): a GGUF
 * image when config_json is NULL, else one safetensors shard described by that
 * config.json text. Same contract as ar_model_open(). */
ar_status ar_model_open_memory(const uint8_t *data, size_t size, const char *config_json,
                               const ar_model_params *params, ar_model **out);

/* The tensor named `name`, or NULL. */
const ar_tensor *ar_model_find_tensor(const ar_model *m, const char *name);

#endif
