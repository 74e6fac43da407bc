/*
 * rqueue.c - the routing queue (rqueue.h): a mutex-guarded FIFO of jobs, one worker thread,
 * per-job condition variables on CLOCK_MONOTONIC for the waiters' deadlines.
 */
#include "gateway/rqueue.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rq_job {
    struct rq_job *next;
    ar_msg_list list;
    ar_route_result res;
    ar_status st;
    ar_err err;
    pthread_cond_t done_cv;
    int refs;       /* waiter + queue, under q->mu */
    bool done;      /* the worker finished it */
    bool abandoned; /* the waiter stopped waiting */
} rq_job;

struct ar_rq {
    pthread_mutex_t mu;
    pthread_cond_t work_cv;
    pthread_t thread;
    rq_job *head, *tail;
    int n_waiting, max_queue;
    bool busy, stop;
    ar_gw_route_fn fn;
    void *ctx;
    _Atomic int *depth;
};

static void job_unref(rq_job *j) { /* under q->mu */
    if (--j->refs > 0) return;
    ar_route_result_clear(&j->res);
    ar_msg_list_free(&j->list);
    pthread_cond_destroy(&j->done_cv);
    free(j);
}

static void set_depth(ar_rq *q) {
    if (q->depth) atomic_store(q->depth, q->n_waiting);
}

static void run_job(ar_rq *q, rq_job *j) {
    size_t n = j->list.n;
    ar_message *m = calloc(n ? n : 1, sizeof *m);
    ar_route_result res;
    memset(&res, 0, sizeof res);
    ar_status st;
    ar_err err = {{0}};
    if (!m) {
        st = ar_errf(&err, AR_ERR_NOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n; i++) {
            m[i].role = ar_msg_role_name(j->list.msgs[i].role);
            m[i].content = j->list.msgs[i].content;
        }
        st = q->fn(q->ctx, m, (int32_t)n, &res, &err);
    }
    free(m);
    pthread_mutex_lock(&q->mu);
    j->st = st;
    j->err = err;
    if (st == AR_OK)
        j->res = res; /* freed by job_unref if nobody takes it */
    else
        ar_route_result_clear(&res);
    j->done = true;
    pthread_cond_signal(&j->done_cv);
    job_unref(j);
}

static void *worker(void *arg) {
    ar_rq *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop) pthread_cond_wait(&q->work_cv, &q->mu);
        if (q->stop) break;
        rq_job *j = q->head;
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        q->n_waiting--;
        set_depth(q);
        if (j->abandoned) {
            job_unref(j);
            continue;
        }
        q->busy = true;
        pthread_mutex_unlock(&q->mu);
        run_job(q, j); /* returns with q->mu held */
        q->busy = false;
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

ar_status ar_rq_start(ar_gw_route_fn fn, void *ctx, int max_queue, _Atomic int *depth, ar_rq **out,
                      ar_err *err) {
    *out = NULL;
    ar_rq *q = calloc(1, sizeof *q);
    if (!q) return ar_errf(err, AR_ERR_NOMEM, "out of memory");
    q->fn = fn;
    q->ctx = ctx;
    q->max_queue = max_queue;
    q->depth = depth;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work_cv, NULL);
    if (pthread_create(&q->thread, NULL, worker, q) != 0) {
        pthread_cond_destroy(&q->work_cv);
        pthread_mutex_destroy(&q->mu);
        free(q);
        return ar_errf(err, AR_ERR_NOMEM, "cannot start the routing thread");
    }
    *out = q;
    return AR_OK;
}

ar_rq_outcome ar_rq_route(ar_rq *q, ar_msg_list *list, int timeout_ms, ar_route_result *res,
                          ar_err *err) {
    memset(res, 0, sizeof *res);
    rq_job *j = calloc(1, sizeof *j);
    if (!j) {
        ar_errf(err, AR_ERR_NOMEM, "out of memory");
        return AR_RQ_ERROR;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += timeout_ms / 1000;
    dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;

    pthread_mutex_lock(&q->mu);
    if (q->stop || ((q->busy || q->head) && q->n_waiting >= q->max_queue)) {
        pthread_mutex_unlock(&q->mu);
        pthread_cond_destroy(&j->done_cv);
        free(j);
        return AR_RQ_FULL;
    }
    j->list = *list;
    memset(list, 0, sizeof *list);
    j->refs = 2;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->n_waiting++;
    set_depth(q);
    pthread_cond_signal(&q->work_cv);
    int rc = 0;
    while (!j->done && rc != ETIMEDOUT) {
        if (timeout_ms > 0)
            rc = pthread_cond_timedwait(&j->done_cv, &q->mu, &dl);
        else
            pthread_cond_wait(&j->done_cv, &q->mu);
    }
    ar_rq_outcome oc;
    if (!j->done) {
        j->abandoned = true;
        oc = AR_RQ_TIMEOUT;
    } else if (j->st != AR_OK) {
        if (err) *err = j->err;
        oc = AR_RQ_ERROR;
    } else {
        *res = j->res;
        memset(&j->res, 0, sizeof j->res);
        oc = AR_RQ_OK;
    }
    job_unref(j);
    pthread_mutex_unlock(&q->mu);
    return oc;
}

void ar_rq_stop(ar_rq *q) {
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    if (q->stop) {
        pthread_mutex_unlock(&q->mu);
        return;
    }
    q->stop = true;
    pthread_cond_broadcast(&q->work_cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    /* Jobs still queued: their waiters wake up with an error (and fail open). */
    pthread_mutex_lock(&q->mu);
    while (q->head) {
        rq_job *j = q->head;
        q->head = j->next;
        j->st = AR_ERR_INVALID_ARG; /* any error: the waiter fails open */
        j->done = true;
        snprintf(j->err.msg, sizeof j->err.msg, "the gateway is stopping");
        pthread_cond_signal(&j->done_cv);
        job_unref(j);
    }
    q->tail = NULL;
    q->n_waiting = 0;
    set_depth(q);
    pthread_mutex_unlock(&q->mu);
}

void ar_rq_free(ar_rq *q) {
    if (!q) return;
    ar_rq_stop(q);
    pthread_cond_destroy(&q->work_cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
