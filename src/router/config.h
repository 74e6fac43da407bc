/*
 * config.h - the routes and gateway configuration: one YAML file read into a plain struct.
 *
 * Two forms are accepted (docs/config.md has the full story):
 *
 *   1. Katanemo archgw's arch_config.yaml, unchanged: `llm_providers` (or `model_providers`)
 *      whose entries carry `model: provider/id`, `access_key`, `default`, `base_url` and
 *      `routing_preferences: [{name, description}]`; `model_aliases`; `listeners` (map or
 *      list form); the newer top-level `routing_preferences: [{name, description, models}]`.
 *      Other archgw top-level keys (`endpoints`, `prompt_targets`, `tracing`, ...) are
 *      accepted and ignored.
 *   2. A short native form: `routes: [{name, description, model}]`, an optional
 *      `providers:` list (same entry fields as llm_providers) and an `archrouter:` section
 *      with `router:` and `server:` maps. Unknown keys inside `archrouter:` are errors.
 *
 * Both forms may be mixed in one file. Every error message reads "NAME:LINE:COL: message"
 * (NAME is the path, or the name given to ar_config_load_memory) and names the key.
 *
 * Statuses: AR_ERR_IO (file cannot be read), AR_ERR_LIMIT (a cap below was exceeded),
 * AR_ERR_FORMAT (YAML syntax, wrong types, failed validation), AR_ERR_NOMEM,
 * AR_ERR_INVALID_ARG (NULL arguments).
 */
#ifndef AR_ROUTER_CONFIG_H
#define AR_ROUTER_CONFIG_H

#include "archrouter.h"
#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Built-in caps on hostile files. */
#define AR_CONFIG_MAX_FILE_BYTES  (4u << 20) /* whole file */
#define AR_CONFIG_MAX_DEPTH       32         /* nested lists/maps */
#define AR_CONFIG_MAX_NODES       100000     /* scalars + lists + maps in the document */
#define AR_CONFIG_MAX_STRING      65536      /* bytes in one scalar */
#define AR_CONFIG_MAX_ROUTES      1024
#define AR_CONFIG_MAX_PROVIDERS   1024
#define AR_CONFIG_MAX_ALIASES     1024
#define AR_CONFIG_MAX_API_KEYS    256
#define AR_CONFIG_MAX_ROUTE_NAME  128  /* bytes */
#define AR_CONFIG_MAX_DESCRIPTION 4096 /* bytes */

/* An upstream LLM. Strings are owned by the config; optional ones are NULL when absent. */
typedef struct ar_config_provider {
    char *name;       /* `name`, or the model as written when absent */
    char *model;      /* as written: "openai/gpt-4o" */
    char *provider;   /* before the first '/': "openai" (or `provider_interface`) */
    char *model_id;   /* after the first '/': "gpt-4o" */
    char *base_url;   /* `base_url`, or "PROTOCOL://ENDPOINT" from `endpoint`; NULL */
    char *access_key; /* as written ("$OPENAI_API_KEY"); see ar_config_resolve_key; NULL */
    bool is_default;  /* `default: true` */
    int line, col;    /* where the entry starts (1-based) */
} ar_config_provider;

/* A routing policy: what the router model chooses between. */
typedef struct ar_config_route {
    char *name;        /* unique, 1..128 bytes, UTF-8, no control characters, not "other" */
    char *description; /* non-empty */
    char *model;       /* the model it sends to: the provider's `model`, or as written */
    int32_t provider;  /* index into providers[], or -1 when no providers are listed */
    int line, col;     /* where the entry starts */
} ar_config_route;

/* archgw `model_aliases: {ALIAS: {target: MODEL}}`. */
typedef struct ar_config_alias {
    char *name;
    char *target;
    int line, col;
} ar_config_alias;

typedef enum ar_config_layout {
    AR_CONFIG_LAYOUT_CARD = 0,  /* the model card's prompt layout (default) */
    AR_CONFIG_LAYOUT_ARCHGW = 1 /* archgw's compact layout */
} ar_config_layout;

/* archrouter.router: the router model and its decisions. Defaults in comments. */
typedef struct ar_config_router {
    char *model;                 /* GGUF path, checkpoint dir or hub reference; NULL */
    int threads;                 /* 0 = the engine's default (0..1024) */
    int precision;               /* -1 = the engine's default; else an ar_precision */
    ar_config_layout layout;     /* "card" */
    char *system_prompt;         /* NULL = the model's template default */
    int max_conversation_tokens; /* 2048 (1..1000000) */
    double min_confidence;       /* 0.0 (0..1): below it, the default provider is used */
    int timeout_ms;              /* 1000 (0 = no deadline, ..3600000) */
    int prefix_cache_mb;         /* 256 (0 = off, ..65536) */
    bool scores;                 /* false: compute a probability for every route */
    bool remote;                 /* backend: local (false, default) or remote */
    char *base_url;              /* remote: the chat completions server ("http://h/v1"); NULL */
    char *remote_model;          /* remote: the model name the server serves; NULL */
    char *api_key_env;           /* remote: the environment variable holding its key; NULL */
} ar_config_router;

/* archrouter.server (and archgw `listeners`): the gateway. */
typedef struct ar_config_server {
    char *address;          /* "127.0.0.1" (never NULL after loading) */
    int port;               /* 12000 (0 = any free port, ..65535) */
    int64_t max_body_bytes; /* 8 MiB (1024..1 GiB) */
    int max_concurrent;     /* 64 (1..65536) */
    int max_queue;          /* 64 router queue depth (0..65536) */
    int connect_timeout_ms; /* 5000 (1..600000) */
    int read_timeout_ms;    /* 300000 (1..86400000); archgw listener `timeout` sets it */
    char **api_keys;        /* client keys, each literal or "$ENV"; NULL when none */
    size_t n_api_keys;
} ar_config_server;

typedef struct ar_config {
    char *source; /* the path or name errors are reported against */
    ar_config_provider *providers;
    size_t n_providers;
    int32_t default_provider; /* index of the `default: true` provider, or -1 */
    ar_config_route *routes;  /* in the order they appear in the file */
    size_t n_routes;
    ar_config_alias *aliases;
    size_t n_aliases;
    ar_config_router router;
    ar_config_server server;
} ar_config;

/* Load a configuration file. On AR_OK *out is a new config owned by the caller (release with
 * ar_config_free); on failure *out is NULL and err (may be NULL) says what and where. */
ar_status ar_config_load_file(const char *path, ar_config **out, ar_err *err);

/* The same from memory: text[0..len) (need not be NUL-terminated), reported as `name`
 * (NULL: "<memory>") in messages. The text is not kept. */
ar_status ar_config_load_memory(const char *text, size_t len, const char *name, ar_config **out,
                                ar_err *err);

/* Free a config and everything it owns. NULL is a no-op. */
void ar_config_free(ar_config *cfg);

/* The settings a config starts from before the file is read (strings NULL, address not
 * set): for callers that build a config without a file. */
void ar_config_router_defaults(ar_config_router *r);

/* Expand a key as written in the config into out[0..cap) (NUL-terminated):
 *   "$VAR" or "${VAR}" (optionally followed by more text) -> the variable's value + the rest;
 *   anything else -> copied unchanged.
 * AR_ERR_NOT_FOUND names the variable when it is unset or empty; AR_ERR_BUFFER_TOO_SMALL
 * when the result does not fit; AR_ERR_FORMAT for "${" without "}" or "$" without a name;
 * AR_ERR_INVALID_ARG for NULL arguments. */
ar_status ar_config_resolve_key(const char *written, char *out, size_t cap, ar_err *err);

/* The provider a model reference names: a provider's `name`, else its `model` as written,
 * else its `model_id`, else an alias whose target resolves so. -1 when none. */
int32_t ar_config_find_provider(const ar_config *cfg, const char *model);

#endif
