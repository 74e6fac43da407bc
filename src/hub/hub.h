/*
 * hub.h - model download from the Hugging Face hub (internal pieces behind ar_pull()).
 *
 * A reference "OWNER/NAME[@REVISION][:FILE]" is parsed and checked against a conservative
 * character set (so it can be put into a URL and a path without escaping), mapped to a
 * place in the archrouter cache and to a place in a huggingface_hub cache. The transfer
 * itself lives in hub.c (ar_pull); these helpers are exposed for the tests.
 */
#ifndef AR_HUB_HUB_H
#define AR_HUB_HUB_H

#include "archrouter.h"
#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct ar_hub_ref {
    char owner[97];
    char name[97];
    char revision[256]; /* "main" unless given */
    char file[1024];    /* may contain '/' (a file in a subfolder) */
} ar_hub_ref;

/* Parse ref (NULL or "" = the default model). AR_ERR_INVALID_ARG with a message naming the
 * bad part. */
ar_status ar_hub_parse_ref(const char *ref, ar_hub_ref *out, ar_err *e);

/* The archrouter cache folder: dir if not NULL, else $ARCHROUTER_CACHE, else
 * $XDG_CACHE_HOME/archrouter, else $HOME/.cache/archrouter. */
ar_status ar_hub_cache_dir(const char *dir, char *out, size_t cap, ar_err *e);

/* The final path of ref's file in the cache folder `cache`. */
ar_status ar_hub_cache_path(const char *cache, const ar_hub_ref *r, char *out, size_t cap,
                            ar_err *e);

/* The huggingface_hub cache folder: dir if not NULL, else $HF_HUB_CACHE, else $HF_HOME/hub,
 * else $XDG_CACHE_HOME/huggingface/hub, else $HOME/.cache/huggingface/hub. */
ar_status ar_hub_hf_cache_dir(const char *dir, char *out, size_t cap, ar_err *e);

/* ref's file in the huggingface_hub cache at hub_cache (snapshots/COMMIT/FILE, the commit
 * read from refs/REVISION unless REVISION is a commit hash). AR_OK with the path when it is
 * a readable regular file, AR_ERR_NOT_FOUND otherwise. */
ar_status ar_hub_find_hf_cached(const char *hub_cache, const ar_hub_ref *r, char *out, size_t cap);

/* The sha256 an ETag header value names, if it is one: optional "W/", optional quotes, 64
 * hex digits. Writes lowercase hex to out. */
bool ar_hub_etag_sha256(const char *etag, char out[65]);

#endif
