/*
 * hfdir.h - a Hugging Face checkpoint directory: config.json plus either one
 * model.safetensors or the shards named by model.safetensors.index.json.
 *
 * This layer finds and checks the files; it does not map them. The index's weight_map
 * ({"tensor name": "shard file name"}) is kept so the caller can check that every listed
 * tensor is in the shard the index names. Shard names must be plain file names inside the
 * directory (no '/' and no "..": an index cannot point outside it).
 */
#ifndef AR_MODEL_HFDIR_H
#define AR_MODEL_HFDIR_H

#include "base/err.h"

#include <jansson.h>
#include <stdbool.h>

#define AR_HF_MAX_CONFIG_BYTES (16u << 20)
#define AR_HF_MAX_INDEX_BYTES  (64u << 20)
#define AR_HF_MAX_SHARDS       4096

typedef struct ar_hf_dir {
    char *dir; /* the directory, without a trailing '/' */
    int n_shards;
    char **shard_names; /* file names relative to dir */
    char **shard_paths; /* dir + "/" + name */
    json_t *config;     /* config.json, an object */
    json_t *weight_map; /* the index's weight_map, or NULL for a single file */
    bool has_tokenizer_json;
    bool has_chat_template; /* tokenizer_config.json "chat_template" or chat_template.jinja */
} ar_hf_dir;

/* `path` is the directory, or a .safetensors file inside it (then that file is the only
 * shard). On failure d is left empty. */
ar_status ar_hf_dir_open(ar_hf_dir *d, const char *path, ar_err *err);

void ar_hf_dir_free(ar_hf_dir *d);

/* Parse a JSON file of at most max_bytes into *out (an object). Errors name the file and
 * the line/column. */
ar_status ar_json_load_file(const char *path, size_t max_bytes, json_t **out, ar_err *err);

#endif
