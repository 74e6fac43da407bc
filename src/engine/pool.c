/*
 * pool.c - the engine's fork-join thread pool (contract in pool.h).
 *
 * n - 1 persistent worker threads; the caller of ar_pool_run is thread 0. A run is a
 * generation: the caller stores fn/ctx and increments `gen` (release). Each worker waits
 * for `gen` to move past the last generation it ran, runs fn(ith, n, ctx) and increments
 * `done` (release); the caller runs ith 0, then waits until `done` has grown by n - 1
 * since the last run (acquire), which also makes the workers' writes visible to it. Both
 * counters only grow (wrapping is harmless: they are compared for equality), so the caller
 * writes nothing to the line the workers finish on. Because the caller waits for every
 * worker before the next generation, a worker is never more than one generation behind.
 *
 * Waiting: a worker spins on `gen` (with PAUSE) for SPIN_ITERS reads (~100 us on Zen 4/5)
 * - back-to-back jobs of a forward pass arrive within microseconds - then sleeps on a
 * condition variable. When the pool has more threads than the CPUs this process may use,
 * spinning only steals time slices from the threads being waited for, so both sides spin
 * SPIN_ITERS_OVERSUBSCRIBED times instead (libgomp does the same). Sleeping workers
 * announce themselves in `n_sleeping` (under the mutex, then re-reading `gen`); the caller
 * reads `n_sleeping` after publishing `gen` and broadcasts only when it is non-zero, so a
 * hot run takes no lock. Both sides use sequentially consistent operations for that pair,
 * so either the caller sees the sleeper or the sleeper sees the new generation. The caller
 * spins on `done` and yields the CPU after a while (it may share its core with workers).
 *
 * Layout: the read-only fields, the job line (written by the caller only: gen, fn, ctx,
 * stop, done_target), the completion counter (written by workers only) and the sleep
 * state each sit in their own 64-byte line, as does each worker's record, so spinning
 * readers do not share a line with unrelated writers.
 *
 * Workers start with every signal blocked, so signals go to the application's threads.
 *
 * ar_physical_cores() counts distinct (physical_package_id, core_id) pairs under
 * /sys/devices/system/cpu/cpu<N>/topology/, only for CPUs this process may run on
 * (sched_getaffinity: taskset and container cpusets), so SMT siblings count once and a
 * default thread count never oversubscribes the CPUs we were given. Fallback:
 * sysconf(_SC_NPROCESSORS_ONLN).
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_ISSET */

#include "engine/pool.h"

#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define CACHE_LINE                64
#define MAX_THREADS               256
#define SPIN_ITERS                4096 /* worker: reads of gen before sleeping (~100 us) */
#define SPIN_ITERS_OVERSUBSCRIBED 16   /* the same with more threads than CPUs */

typedef struct worker {
    _Alignas(CACHE_LINE) struct ar_pool *pool;
    int ith;
    pthread_t thread;
} worker;

struct ar_pool {
    /* Read-only after ar_pool_new. */
    int n;
    int spin_iters;  /* reads of a counter before sleeping (workers) or yielding (caller) */
    worker *workers; /* [n - 1]: workers[i] runs ith i + 1 */

    /* The job: written by the caller, read by workers after they see gen change. */
    _Alignas(CACHE_LINE) atomic_uint gen;
    ar_pool_fn fn;
    void *ctx;
    atomic_bool stop;
    unsigned done_target; /* the value of `done` when the current run is over (caller only) */

    /* Calls finished by workers, all generations; the caller expects done_target. */
    _Alignas(CACHE_LINE) atomic_uint done;

    /* Sleeping workers. */
    _Alignas(CACHE_LINE) pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int n_sleeping;
};

/* Waits until pool->gen differs from `seen` and returns it. */
static unsigned wait_generation(struct ar_pool *pool, unsigned seen) {
    for (int i = 0; i < pool->spin_iters; i++) {
        const unsigned g = atomic_load_explicit(&pool->gen, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
    }
    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add(&pool->n_sleeping, 1); /* seq_cst, paired with ar_pool_run */
    unsigned g;
    while ((g = atomic_load(&pool->gen)) == seen) pthread_cond_wait(&pool->cv, &pool->mu);
    atomic_fetch_sub(&pool->n_sleeping, 1);
    pthread_mutex_unlock(&pool->mu);
    return g;
}

/* CPUs this process may run on (affinity mask; online CPUs when that is unknown). */
static int usable_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int)(online < 65536 ? online : 65536) : 1;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    struct ar_pool *pool = w->pool;
    unsigned seen = 0; /* the pool starts at generation 0 */
    for (;;) {
        seen = wait_generation(pool, seen);
        if (atomic_load_explicit(&pool->stop, memory_order_relaxed)) break;
        pool->fn(w->ith, pool->n, pool->ctx);
        atomic_fetch_add_explicit(&pool->done, 1, memory_order_release);
    }
    return NULL;
}

/* Publishes a new generation and wakes sleeping workers. */
static void publish(struct ar_pool *pool) {
    atomic_fetch_add(&pool->gen, 1); /* seq_cst: release for the job, ordered before the read */
    if (atomic_load(&pool->n_sleeping) > 0) {
        pthread_mutex_lock(&pool->mu);
        pthread_cond_broadcast(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
    }
}

/* Stops and joins the first n_started workers, then frees the pool. */
static void pool_destroy(struct ar_pool *pool, int n_started) {
    if (n_started > 0) {
        atomic_store_explicit(&pool->stop, true, memory_order_relaxed);
        publish(pool);
        for (int i = 0; i < n_started; i++) pthread_join(pool->workers[i].thread, NULL);
    }
    pthread_cond_destroy(&pool->cv);
    pthread_mutex_destroy(&pool->mu);
    free(pool->workers);
    free(pool);
}

ar_status ar_pool_new(int n_threads, ar_pool **out) {
    if (!out) return AR_ERR_INVALID_ARG;
    *out = NULL;
    if (n_threads < 1 || n_threads > MAX_THREADS) return AR_ERR_INVALID_ARG;

    struct ar_pool *pool = aligned_alloc(CACHE_LINE, sizeof *pool);
    if (!pool) return AR_ERR_NOMEM;
    memset(pool, 0, sizeof *pool);
    pool->n = n_threads;
    pool->spin_iters = n_threads <= usable_cpus() ? SPIN_ITERS : SPIN_ITERS_OVERSUBSCRIBED;
    atomic_init(&pool->gen, 0);
    atomic_init(&pool->stop, false);
    atomic_init(&pool->done, 0);
    atomic_init(&pool->n_sleeping, 0);
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        free(pool);
        return AR_ERR_NOMEM;
    }
    if (pthread_cond_init(&pool->cv, NULL) != 0) {
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return AR_ERR_NOMEM;
    }
    if (n_threads == 1) {
        *out = pool;
        return AR_OK;
    }

    pool->workers = aligned_alloc(CACHE_LINE, (size_t)(n_threads - 1) * sizeof(worker));
    if (!pool->workers) {
        pool_destroy(pool, 0);
        return AR_ERR_NOMEM;
    }
    memset(pool->workers, 0, (size_t)(n_threads - 1) * sizeof(worker));

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = 0;
    for (; started < n_threads - 1; started++) {
        worker *w = &pool->workers[started];
        w->pool = pool;
        w->ith = started + 1;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started < n_threads - 1) {
        pool_destroy(pool, started);
        return AR_ERR_NOMEM; /* out of threads or stack memory */
    }
    *out = pool;
    return AR_OK;
}

void ar_pool_free(ar_pool *pool) {
    if (!pool) return;
    pool_destroy(pool, pool->n - 1);
}

int ar_pool_size(const ar_pool *pool) {
    return pool->n;
}

void ar_pool_run(ar_pool *pool, ar_pool_fn fn, void *ctx) {
    if (pool->n == 1) {
        fn(0, 1, ctx);
        return;
    }
    pool->fn = fn;
    pool->ctx = ctx;
    pool->done_target += (unsigned)(pool->n - 1);
    publish(pool);

    fn(0, pool->n, ctx);

    const unsigned target = pool->done_target;
    for (int spins = 0; atomic_load_explicit(&pool->done, memory_order_acquire) != target;
         spins++) {
        if (spins < pool->spin_iters) {
            cpu_relax();
        } else {
            sched_yield();
            spins = 0;
        }
    }
}

/* --- Core count --------------------------------------------------------------------------- */

typedef struct core_id {
    long package, core;
} core_id;

static int cmp_core(const void *a, const void *b) {
    const core_id *x = a, *y = b;
    if (x->package != y->package) return x->package < y->package ? -1 : 1;
    return x->core < y->core ? -1 : x->core > y->core;
}

/* Reads one integer from a sysfs file; false when it cannot. */
static bool read_long(const char *path, long *v) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    const bool ok = fscanf(f, "%ld", v) == 1;
    fclose(f);
    return ok;
}

/* Distinct (physical_package_id, core_id) pairs of the CPUs in sysfs that this process may
 * use; 0 when unknown. */
static int count_sysfs_cores(void) {
    cpu_set_t allowed;
    const bool have_mask = sched_getaffinity(0, sizeof allowed, &allowed) == 0;
    DIR *dir = opendir("/sys/devices/system/cpu");
    if (!dir) return 0;
    core_id *ids = NULL;
    size_t n = 0, cap = 0;
    bool ok = true;
    struct dirent *de;
    while (ok && (de = readdir(dir)) != NULL) {
        unsigned cpu;
        char tail;
        if (sscanf(de->d_name, "cpu%u%c", &cpu, &tail) != 1) continue; /* cpufreq, cpuidle */
        if (have_mask && (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed))) continue;
        char path[128];
        core_id id;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u/topology/physical_package_id",
                 cpu);
        if (!read_long(path, &id.package)) continue; /* offline CPUs have no topology */
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%u/topology/core_id", cpu);
        if (!read_long(path, &id.core)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            core_id *grown = realloc(ids, cap * sizeof *ids);
            if (!grown) {
                ok = false;
                break;
            }
            ids = grown;
        }
        ids[n++] = id;
    }
    closedir(dir);
    int distinct = 0;
    if (ok && n > 0) {
        qsort(ids, n, sizeof *ids, cmp_core);
        for (size_t i = 0; i < n; i++)
            if (i == 0 || cmp_core(&ids[i - 1], &ids[i]) != 0) distinct++;
    }
    free(ids);
    return distinct;
}

int ar_physical_cores(void) {
    int n = count_sysfs_cores();
    if (n <= 0) {
        const long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (int)(online < 65536 ? online : 65536) : 1;
    }
    return n;
}
