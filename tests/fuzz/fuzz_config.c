/*
 * fuzz_config.c - libFuzzer target for the YAML configuration reader: the input is the
 * file's text, loaded with ar_config_load_memory(). A failed load must leave no config and
 * a message that starts with the source name; a config that loads must keep the promises of
 * src/router/config.h (caps, valid provider indexes, unique non-reserved route names, a
 * server address, settings in range). Keys found in the config are also resolved, so the
 * $ENV expansion sees fuzzed text.
 */
#include "fuzz_model.h"
#include "router/config.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_config(const ar_config *cfg) {
    FUZZ_CHECK(cfg->n_routes <= AR_CONFIG_MAX_ROUTES);
    FUZZ_CHECK(cfg->n_providers <= AR_CONFIG_MAX_PROVIDERS);
    FUZZ_CHECK(cfg->n_routes + cfg->n_providers > 0);
    FUZZ_CHECK(cfg->default_provider >= -1 && cfg->default_provider < (int32_t)cfg->n_providers);
    for (size_t i = 0; i < cfg->n_providers; i++) {
        const ar_config_provider *p = &cfg->providers[i];
        FUZZ_CHECK(p->name && p->name[0] && p->model && p->provider && p->model_id);
        FUZZ_CHECK(p->provider[0] && p->model_id[0]);
        if (p->access_key) {
            char key[256];
            ar_err e;
            ar_status st = ar_config_resolve_key(p->access_key, key, sizeof key, &e);
            if (st != AR_OK) fuzz_check_error(st, e.msg);
        }
    }
    for (size_t i = 0; i < cfg->n_routes; i++) {
        const ar_config_route *r = &cfg->routes[i];
        size_t len = strlen(r->name);
        FUZZ_CHECK(len > 0 && len <= AR_CONFIG_MAX_ROUTE_NAME);
        FUZZ_CHECK(strcmp(r->name, "other") != 0);
        FUZZ_CHECK(r->description && r->description[0] && r->model);
        FUZZ_CHECK(r->provider >= -1 && r->provider < (int32_t)cfg->n_providers);
        FUZZ_CHECK((r->provider < 0) == (cfg->n_providers == 0));
        if (r->provider >= 0) FUZZ_CHECK(!strcmp(r->model, cfg->providers[r->provider].model));
        if (i > 0)
            FUZZ_CHECK(r->line > r[-1].line || (r->line == r[-1].line && r->col > r[-1].col));
        /* Unique names: compare with a few neighbours (the reader checks all pairs). */
        for (size_t j = i > 8 ? i - 8 : 0; j < i; j++)
            FUZZ_CHECK(strcmp(r->name, cfg->routes[j].name) != 0);
    }
    FUZZ_CHECK(cfg->server.address && cfg->server.address[0]);
    FUZZ_CHECK(cfg->server.port >= 0 && cfg->server.port <= 65535);
    FUZZ_CHECK(cfg->router.min_confidence >= 0 && cfg->router.min_confidence <= 1);
    FUZZ_CHECK(cfg->server.n_api_keys <= AR_CONFIG_MAX_API_KEYS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size ? size : 1); /* exact size, no NUL: ASan sees over-reads */
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    ar_err e = {{0}};
    ar_config *cfg = NULL;
    ar_status st = ar_config_load_memory(copy, size, "fuzz.yaml", &cfg, &e);
    if (st == AR_OK) {
        FUZZ_CHECK(cfg != NULL);
        check_config(cfg);
        ar_config_free(cfg);
    } else {
        fuzz_check_error(st, e.msg);
        FUZZ_CHECK(cfg == NULL);
        FUZZ_CHECK(strncmp(e.msg, "fuzz.yaml", 9) == 0);
    }
    free(copy);
    return 0;
}
