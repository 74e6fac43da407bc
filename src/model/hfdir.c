/*
 * hfdir.c - locating the files of a Hugging Face checkpoint (see hfdir.h).
 */
#include "model/hfdir.h"

#include "base/mapfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s) return NULL;
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

ar_status ar_json_load_file(const char *path, size_t max_bytes, json_t **out, ar_err *err) {
    *out = NULL;
    ar_mapfile m;
    ar_status rc = ar_mapfile_open(&m, path, true, max_bytes, err);
    if (rc != AR_OK) return rc;
    json_error_t jerr;
    json_t *root = json_loadb((const char *)m.data, m.size, JSON_REJECT_DUPLICATES, &jerr);
    ar_mapfile_close(&m);
    if (!root)
        return ar_errf(err, AR_ERR_FORMAT, "%s: line %d, column %d: %s", path, jerr.line,
                       jerr.column, jerr.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return ar_errf(err, AR_ERR_FORMAT, "%s: expected a JSON object", path);
    }
    *out = root;
    return AR_OK;
}

static ar_status add_shard(ar_hf_dir *d, const char *name, ar_err *err) {
    for (int i = 0; i < d->n_shards; i++)
        if (strcmp(d->shard_names[i], name) == 0) return AR_OK;
    if (d->n_shards >= AR_HF_MAX_SHARDS)
        return ar_errf(err, AR_ERR_LIMIT, "%s: more than %d shards", d->dir, AR_HF_MAX_SHARDS);
    char **names = realloc(d->shard_names, (size_t)(d->n_shards + 1) * sizeof *names);
    if (names) d->shard_names = names;
    char **paths = realloc(d->shard_paths, (size_t)(d->n_shards + 1) * sizeof *paths);
    if (paths) d->shard_paths = paths;
    if (!names || !paths) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    char *n = strdup(name), *p = join(d->dir, name);
    if (!n || !p) {
        free(n);
        free(p);
        return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    }
    d->shard_names[d->n_shards] = n;
    d->shard_paths[d->n_shards] = p;
    d->n_shards++;
    return AR_OK;
}

/* Shards from model.safetensors.index.json. */
static ar_status read_index(ar_hf_dir *d, const char *index_path, ar_err *err) {
    json_t *index;
    ar_status rc = ar_json_load_file(index_path, AR_HF_MAX_INDEX_BYTES, &index, err);
    if (rc != AR_OK) return rc;
    json_t *map = json_object_get(index, "weight_map");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        json_decref(index);
        return ar_errf(err, AR_ERR_FORMAT, "%s: \"weight_map\" missing, empty or not an object",
                       index_path);
    }
    d->weight_map = json_incref(map);
    json_decref(index);
    const char *tensor;
    json_t *file;
    json_object_foreach(d->weight_map, tensor, file) {
        const char *f = json_string_value(file);
        if (!f)
            return ar_errf(err, AR_ERR_FORMAT, "%s: weight_map[\"%.100s\"] is not a string",
                           index_path, tensor);
        if (!*f || strchr(f, '/') || strcmp(f, "..") == 0 || strcmp(f, ".") == 0 ||
            !ends_with(f, ".safetensors"))
            return ar_errf(err, AR_ERR_FORMAT,
                           "%s: weight_map[\"%.100s\"] = \"%.100s\" is not a .safetensors file "
                           "name in the checkpoint directory",
                           index_path, tensor, f);
        rc = add_shard(d, f, err);
        if (rc != AR_OK) return rc;
    }
    return AR_OK;
}

static ar_status find_shards(ar_hf_dir *d, ar_err *err) {
    char *index = join(d->dir, "model.safetensors.index.json");
    char *single = join(d->dir, "model.safetensors");
    ar_status rc = AR_OK;
    if (!index || !single)
        rc = ar_errf(err, AR_ERR_NOMEM, "out of memory");
    else if (is_file(index))
        rc = read_index(d, index, err);
    else if (is_file(single))
        rc = add_shard(d, "model.safetensors", err);
    else
        rc = ar_errf(err, AR_ERR_IO,
                     "%s: no model.safetensors or model.safetensors.index.json in this directory",
                     d->dir);
    free(index);
    free(single);
    return rc;
}

static void find_tokenizer(ar_hf_dir *d) {
    char *p = join(d->dir, "tokenizer.json");
    d->has_tokenizer_json = p && is_file(p);
    free(p);
    p = join(d->dir, "chat_template.jinja");
    d->has_chat_template = p && is_file(p);
    free(p);
    p = join(d->dir, "tokenizer_config.json");
    json_t *tc = NULL;
    if (p && is_file(p) && ar_json_load_file(p, AR_HF_MAX_INDEX_BYTES, &tc, NULL) == AR_OK) {
        if (json_is_string(json_object_get(tc, "chat_template")) ||
            json_is_array(json_object_get(tc, "chat_template")))
            d->has_chat_template = true;
        json_decref(tc);
    }
    free(p);
}

ar_status ar_hf_dir_open(ar_hf_dir *d, const char *path, ar_err *err) {
    memset(d, 0, sizeof *d);
    const char *file = NULL;
    if (is_dir(path)) {
        d->dir = strdup(path);
    } else if (is_file(path) && ends_with(path, ".safetensors")) {
        const char *slash = strrchr(path, '/');
        d->dir = slash ? strndup(path, (size_t)(slash - path)) : strdup(".");
        file = slash ? slash + 1 : path;
    } else if (!is_file(path)) {
        struct stat st;
        int e = stat(path, &st) == 0 ? EINVAL : errno;
        return ar_errf(err, AR_ERR_IO, "%s: %s", path,
                       e == EINVAL ? "not a regular file or directory" : strerror(e));
    } else {
        return ar_errf(err, AR_ERR_FORMAT, "%s: not a GGUF file or a checkpoint directory", path);
    }
    if (!d->dir) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    size_t len = strlen(d->dir);
    while (len > 1 && d->dir[len - 1] == '/') d->dir[--len] = 0;
    char *cfg = join(d->dir, "config.json");
    ar_status rc = AR_OK;
    if (!cfg)
        rc = ar_errf(err, AR_ERR_NOMEM, "out of memory");
    else if (!is_file(cfg))
        rc = ar_errf(err, AR_ERR_IO,
                     "%s: no config.json (a Hugging Face checkpoint directory needs one)", d->dir);
    else
        rc = ar_json_load_file(cfg, AR_HF_MAX_CONFIG_BYTES, &d->config, err);
    free(cfg);
    if (rc == AR_OK) rc = file ? add_shard(d, file, err) : find_shards(d, err);
    if (rc == AR_OK) find_tokenizer(d);
    if (rc != AR_OK) ar_hf_dir_free(d);
    return rc;
}

void ar_hf_dir_free(ar_hf_dir *d) {
    for (int i = 0; i < d->n_shards; i++) {
        free(d->shard_names[i]);
        free(d->shard_paths[i]);
    }
    free(d->shard_names);
    free(d->shard_paths);
    json_decref(d->config);
    json_decref(d->weight_map);
    free(d->dir);
    memset(d, 0, sizeof *d);
}
