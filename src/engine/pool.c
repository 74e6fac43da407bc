/*
 * pool.c - placeholder: the thread pool is being written (pool.h has the contract).
 * Until then every run executes on the caller's thread alone.
 */
#include "engine/pool.h"

#include <stdlib.h>

struct ar_pool {
    int n;
};

ar_status ar_pool_new(int n_threads, ar_pool **out) {
    (void)n_threads;
    *out = calloc(1, sizeof **out);
    if (!*out) return AR_ERR_NOMEM;
    (*out)->n = 1;
    return AR_OK;
}

void ar_pool_free(ar_pool *pool) {
    free(pool);
}

int ar_pool_size(const ar_pool *pool) {
    return pool->n;
}

void ar_pool_run(ar_pool *pool, ar_pool_fn fn, void *ctx) {
    (void)pool;
    fn(0, 1, ctx);
}

int ar_physical_cores(void) {
    return 1;
}
