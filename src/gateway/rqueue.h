/*
 * rqueue.h - the routing queue: one worker thread runs routing decisions one at a time (the
 * router serializes them anyway) for requests that wait on it with a deadline.
 *
 * A request hands over its conversation and blocks until its decision is made or its
 * deadline passes. The queue holds at most max_queue waiting jobs besides the running one;
 * a request that finds it full, or whose deadline passes, gets AR_RQ_FULL / AR_RQ_TIMEOUT
 * at once and goes to its fallback model (fail-open). A job whose waiter gave up is skipped
 * if it has not started, and its result dropped if it has: each job is reference counted
 * (waiter + queue) and freed by whichever lets go last.
 */
#ifndef AR_GATEWAY_RQUEUE_H
#define AR_GATEWAY_RQUEUE_H

#include "archrouter.h"
#include "base/err.h"
#include "router/messages.h"

#include <stddef.h>

/* A routing decision: fills *out (as ar_router_route) or returns an error with a message. */
typedef ar_status (*ar_gw_route_fn)(void *ctx, const ar_message *msgs, int32_t n,
                                    ar_route_result *out, ar_err *err);

typedef struct ar_rq ar_rq;

typedef enum ar_rq_outcome {
    AR_RQ_OK = 0,      /* *res holds the decision */
    AR_RQ_TIMEOUT = 1, /* the deadline passed first */
    AR_RQ_FULL = 2,    /* max_queue jobs were already waiting */
    AR_RQ_ERROR = 3    /* the router failed; err says why */
} ar_rq_outcome;

/* Start the worker. max_queue: waiting jobs allowed (0: only when the worker is idle).
 * depth (may be NULL) is kept equal to the number of waiting jobs. */
ar_status ar_rq_start(ar_gw_route_fn fn, void *ctx, int max_queue, _Atomic int *depth, ar_rq **out,
                      ar_err *err);

/* Route the conversation in *list (its messages move into the queue; *list is emptied),
 * waiting at most timeout_ms (0: no deadline). On AR_RQ_OK the caller owns *res and clears
 * it with ar_route_result_clear(). */
ar_rq_outcome ar_rq_route(ar_rq *q, ar_msg_list *list, int timeout_ms, ar_route_result *res,
                          ar_err *err);

/* Stop the worker after the running job; waiting jobs end at once with AR_RQ_ERROR and
 * later calls get AR_RQ_FULL. Waiters may still be returning: free only after they have. */
void ar_rq_stop(ar_rq *q);

/* ar_rq_stop() and free the queue. NULL is a no-op. */
void ar_rq_free(ar_rq *q);

#endif
