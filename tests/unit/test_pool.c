/*
 * test_pool.c - the engine's thread pool (src/engine/pool.c).
 *
 * Pools of 1, 2, 4 and 8 threads (more threads than this machine has cores is allowed
 * and must still work): every ith runs exactly once per run with the right nth; a parallel
 * sum equals the serial one; runs after the workers have gone to sleep; runs from a thread
 * that did not create the pool; creating and freeing without a run; 100k back-to-back runs
 * with 2 threads, whose mean cost per run is printed ("# pool: ... us per run").
 * Run it under ThreadSanitizer too (a build with -fsanitize=thread in CMAKE_C_FLAGS and
 * CMAKE_EXE_LINKER_FLAGS): the pool's synchronization must show no data race.
 */
#include "testutil.h"

#include "engine/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const int pool_sizes[] = {1, 2, 4, 8};
#define N_POOL_SIZES (sizeof pool_sizes / sizeof pool_sizes[0])

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* One slot per ith, padded so threads do not share lines. */
typedef struct slot {
    _Alignas(64) long count;
    int nth_seen;
} slot;

typedef struct count_job {
    slot slots[256];
    atomic_int calls; /* all calls of the run, any ith */
} count_job;

static void count_fn(int ith, int nth, void *ctx) {
    count_job *job = ctx;
    job->slots[ith].count++;
    job->slots[ith].nth_seen = nth;
    atomic_fetch_add_explicit(&job->calls, 1, memory_order_relaxed);
}

/* Runs `runs` counting jobs on pool and checks after each that every ith ran once. */
static void check_counts(ar_pool *pool, int runs) {
    const int n = ar_pool_size(pool);
    count_job *job = aligned_alloc(64, sizeof *job);
    assert_non_null(job);
    memset(job, 0, sizeof *job);
    for (int r = 1; r <= runs; r++) {
        ar_pool_run(pool, count_fn, job);
        assert_int_equal(atomic_load(&job->calls), r * n);
        for (int i = 0; i < n; i++) {
            if (job->slots[i].count != r)
                fail_msg("run %d: ith %d ran %ld times", r, i, job->slots[i].count);
            assert_int_equal(job->slots[i].nth_seen, n);
        }
        for (int i = n; i < 256; i++) assert_int_equal(job->slots[i].count, 0);
    }
    free(job);
}

static void test_every_ith_once(void **state) {
    (void)state;
    for (size_t s = 0; s < N_POOL_SIZES; s++) {
        ar_pool *pool = NULL;
        assert_int_equal(ar_pool_new(pool_sizes[s], &pool), AR_OK);
        assert_non_null(pool);
        assert_int_equal(ar_pool_size(pool), pool_sizes[s]);
        check_counts(pool, 2000);
        ar_pool_free(pool);
    }
}

/* Sum of v[0..n) split in nth contiguous chunks. */
typedef struct sum_job {
    const uint64_t *v;
    int64_t n;
    slot partial[256];
} sum_job;

static void sum_fn(int ith, int nth, void *ctx) {
    sum_job *job = ctx;
    const int64_t lo = job->n * ith / nth, hi = job->n * (ith + 1) / nth;
    uint64_t s = 0;
    for (int64_t i = lo; i < hi; i++) s += job->v[i] * job->v[i];
    job->partial[ith].count = (long)s;
}

static void test_parallel_sum(void **state) {
    (void)state;
    const int64_t n = 1000003;
    uint64_t *v = malloc((size_t)n * sizeof *v);
    assert_non_null(v);
    uint64_t serial = 0;
    for (int64_t i = 0; i < n; i++) {
        v[i] = (uint64_t)(i * 2654435761u % 1000);
        serial += v[i] * v[i];
    }
    sum_job *job = aligned_alloc(64, sizeof *job);
    assert_non_null(job);
    for (size_t s = 0; s < N_POOL_SIZES; s++) {
        ar_pool *pool;
        assert_int_equal(ar_pool_new(pool_sizes[s], &pool), AR_OK);
        for (int rep = 0; rep < 20; rep++) {
            memset(job, 0, sizeof *job);
            job->v = v;
            job->n = n - rep; /* different splits */
            ar_pool_run(pool, sum_fn, job);
            uint64_t total = 0, want = serial;
            for (int i = 0; i < pool_sizes[s]; i++) total += (uint64_t)job->partial[i].count;
            for (int64_t i = n - rep; i < n; i++) want -= v[i] * v[i];
            assert_true(total == want);
        }
        ar_pool_free(pool);
    }
    free(job);
    free(v);
}

static void noop_fn(int ith, int nth, void *ctx) {
    slot *slots = ctx;
    (void)nth;
    slots[ith].count++;
}

/* Back-to-back runs: the overhead of a run with hot workers. */
static void test_back_to_back(void **state) {
    (void)state;
    const int runs = 100000;
    slot *slots = aligned_alloc(64, 8 * sizeof *slots);
    assert_non_null(slots);
    for (size_t s = 0; s < N_POOL_SIZES; s++) {
        const int nth = pool_sizes[s];
        /* More threads than cores means waiting for time slices: fewer runs there. */
        const long cores = sysconf(_SC_NPROCESSORS_ONLN);
        const int n_runs = nth == 2 || nth <= cores ? runs : 2000;
        ar_pool *pool;
        assert_int_equal(ar_pool_new(nth, &pool), AR_OK);
        memset(slots, 0, 8 * sizeof *slots);
        ar_pool_run(pool, noop_fn, slots); /* wake the workers */
        const double t0 = now_us();
        for (int r = 0; r < n_runs; r++) ar_pool_run(pool, noop_fn, slots);
        const double us = (now_us() - t0) / n_runs;
        for (int i = 0; i < nth; i++) assert_int_equal(slots[i].count, n_runs + 1);
        printf("# pool: %d threads, %d back-to-back runs: %.2f us per run\n", nth, n_runs, us);
        ar_pool_free(pool);
    }
    free(slots);
}

/* Runs after the workers have had time to go to sleep on the condition variable. */
static void test_wake_after_sleep(void **state) {
    (void)state;
    ar_pool *pool;
    assert_int_equal(ar_pool_new(4, &pool), AR_OK);
    for (int i = 0; i < 5; i++) {
        usleep(20000);
        check_counts(pool, 3);
    }
    ar_pool_free(pool);
}

static void test_free_without_runs(void **state) {
    (void)state;
    for (size_t s = 0; s < N_POOL_SIZES; s++) {
        ar_pool *pool;
        assert_int_equal(ar_pool_new(pool_sizes[s], &pool), AR_OK);
        ar_pool_free(pool);
    }
    ar_pool *big;
    assert_int_equal(ar_pool_new(256, &big), AR_OK);
    ar_pool_free(big);
    ar_pool_free(NULL);
}

static void test_invalid_args(void **state) {
    (void)state;
    ar_pool *pool = (ar_pool *)&pool;
    assert_int_equal(ar_pool_new(0, &pool), AR_ERR_INVALID_ARG);
    assert_null(pool);
    assert_int_equal(ar_pool_new(-3, &pool), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_pool_new(257, &pool), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_pool_new(2, NULL), AR_ERR_INVALID_ARG);
}

typedef struct other_thread {
    ar_pool *pool;
    int ok;
} other_thread;

static void *other_main(void *arg) {
    other_thread *o = arg;
    const int n = ar_pool_size(o->pool);
    slot slots[8];
    memset(slots, 0, sizeof slots);
    for (int r = 0; r < 1000; r++) ar_pool_run(o->pool, noop_fn, slots);
    o->ok = 1;
    for (int i = 0; i < n; i++)
        if (slots[i].count != 1000) o->ok = 0;
    return NULL;
}

static void test_run_from_other_thread(void **state) {
    (void)state;
    for (size_t s = 1; s < N_POOL_SIZES; s++) {
        ar_pool *pool;
        assert_int_equal(ar_pool_new(pool_sizes[s], &pool), AR_OK);
        check_counts(pool, 10); /* the creator first, then another thread */
        other_thread o = {pool, 0};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, other_main, &o), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(o.ok);
        check_counts(pool, 10);
        ar_pool_free(pool);
    }
}

static void test_physical_cores(void **state) {
    (void)state;
    const int n = ar_physical_cores();
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    printf("# ar_physical_cores() = %d (online CPUs: %ld)\n", n, online);
    assert_true(n >= 1);
    if (online > 0) assert_true(n <= online);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_ith_once),        cmocka_unit_test(test_parallel_sum),
        cmocka_unit_test(test_back_to_back),          cmocka_unit_test(test_wake_after_sleep),
        cmocka_unit_test(test_free_without_runs),     cmocka_unit_test(test_invalid_args),
        cmocka_unit_test(test_run_from_other_thread), cmocka_unit_test(test_physical_cores),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
