/*
 * pool.h - the engine's thread pool: a fixed set of worker threads that run one function
 * on all threads at once and return when every thread has finished (fork-join).
 *
 * The caller's thread takes part as thread 0, so a pool of 1 has no workers. Workers spin
 * briefly waiting for work (a forward pass issues hundreds of small jobs back to back),
 * then sleep on a condition variable. One run at a time: callers serialize.
 */
#ifndef AR_ENGINE_POOL_H
#define AR_ENGINE_POOL_H

#include "archrouter.h"

typedef struct ar_pool ar_pool;

/* fn runs once on each thread: ith in [0, nth). */
typedef void (*ar_pool_fn)(int ith, int nth, void *ctx);

/* A pool of n_threads threads in all (1..256), the caller's included. */
ar_status ar_pool_new(int n_threads, ar_pool **out);

/* Stop and join the workers. NULL is a no-op. */
void ar_pool_free(ar_pool *pool);

int ar_pool_size(const ar_pool *pool);

/* Run fn(ith, nth, ctx) on every thread; returns when all calls have returned. */
void ar_pool_run(ar_pool *pool, ar_pool_fn fn, void *ctx);

/* Physical cores this process may run on (its CPU affinity: taskset, container limits),
 * SMT siblings counted once; at least 1. */
int ar_physical_cores(void);

#endif
