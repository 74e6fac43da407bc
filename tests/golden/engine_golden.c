/*
 * engine_golden.c - see engine_golden.h.
 *
 * Prompts are evaluated in chunks of CHUNK positions with logits for every position, so a
 * long prompt with a 151,936-token vocabulary never needs all its logits at once (and the
 * chunking itself is exercised). Statistics are computed in double.
 */
#include "engine_golden.h"

#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 128

static double lse_of(const float *x, int n) {
    double m = -INFINITY, s = 0;
    for (int i = 0; i < n; i++)
        if (x[i] > m) m = x[i];
    for (int i = 0; i < n; i++) s += exp((double)x[i] - m);
    return m + log(s);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static double jnum(json_t *a, size_t i) {
    return json_number_value(json_array_get(a, i));
}

static void maxin(double *m, double v) {
    if (v > *m) *m = v;
}

/* Compare one position's logits with the golden lse and top-16. */
static void check_position(const float *logits, int n_vocab, json_t *lse, json_t *top_ids,
                           json_t *top_vals, size_t pos, double tol, golden_errors *err) {
    maxin(&err->lse, fabs(lse_of(logits, n_vocab) - jnum(lse, pos)));
    json_t *ids = json_array_get(top_ids, pos), *vals = json_array_get(top_vals, pos);
    size_t k = json_array_size(ids);
    for (size_t i = 0; i < k; i++) {
        int id = (int)json_integer_value(json_array_get(ids, i));
        maxin(&err->top, fabs((double)logits[id] - jnum(vals, i)));
    }
    int best = argmax(logits, n_vocab);
    if (best == (int)json_integer_value(json_array_get(ids, 0))) err->top1_agree++;
    /* Our ranking of the golden top ids must agree wherever the golden gaps are clear. */
    for (size_t i = 0; i + 1 < k; i++) {
        double gap = jnum(vals, i) - jnum(vals, i + 1);
        int a = (int)json_integer_value(json_array_get(ids, i));
        int b = (int)json_integer_value(json_array_get(ids, i + 1));
        if (gap > 2 * tol && !(logits[a] > logits[b])) err->id_mismatch++;
    }
    if (jnum(vals, 0) - jnum(vals, 1) > 2 * tol &&
        best != (int)json_integer_value(json_array_get(ids, 0)))
        err->id_mismatch++;
    err->positions++;
}

static float *read_floats(const char *dir, const char *rel, int n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    size_t len = 0;
    char *data = ar_test_read_file(path, &len);
    if (!data) fail_msg("cannot read %s", path);
    if (len != (size_t)n * sizeof(float))
        fail_msg("%s: %zu bytes, expected %d floats", path, len, n);
    return (float *)data;
}

static void check_last(const float *logits, int n_vocab, const char *dir, json_t *prompt,
                       golden_errors *err) {
    const char *file = json_string_value(json_object_get(prompt, "last_logits_file"));
    if (!dir || !file) return;
    float *ref = read_floats(dir, file, n_vocab);
    for (int i = 0; i < n_vocab; i++) maxin(&err->last, fabs((double)logits[i] - ref[i]));
    free(ref);
}

/* Teacher-forced log-probability of each route's completion. */
static void check_routes(ar_engine *eng, ar_seq *prompt_seq, const float *last, json_t *routes,
                         golden_errors *err) {
    int n_vocab = ar_engine_n_vocab(eng);
    const char *name;
    json_t *r;
    json_object_foreach(routes, name, r) {
        json_t *comp = json_object_get(r, "completion_ids");
        int n = (int)json_array_size(comp);
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        float *logits = malloc((size_t)n * (size_t)n_vocab * sizeof *logits);
        assert_non_null(ids);
        assert_non_null(logits);
        for (int i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(comp, i));
        ar_seq_params sp = ar_seq_default_params();
        sp.n_ctx = ar_seq_n_past(prompt_seq) + n;
        ar_seq *s = NULL;
        assert_int_equal(ar_seq_new(eng, &sp, &s), AR_OK);
        assert_int_equal(ar_seq_copy(s, prompt_seq, ar_seq_n_past(prompt_seq)), AR_OK);
        assert_int_equal(ar_seq_eval(s, ids, n, AR_LOGITS_ALL, logits), AR_OK);
        double lp = (double)last[ids[0]] - lse_of(last, n_vocab);
        for (int i = 1; i < n; i++) {
            const float *l = logits + (size_t)(i - 1) * (size_t)n_vocab;
            lp += (double)l[ids[i]] - lse_of(l, n_vocab);
        }
        maxin(&err->route, fabs(lp - json_number_value(json_object_get(r, "logprob"))));
        ar_seq_free(s);
        free(ids);
        free(logits);
    }
}

/* The 16-step greedy continuation, compared up to the first small margin. */
static void check_greedy(ar_seq *s, float *last, int n_vocab, json_t *prompt, double tol,
                         golden_errors *err) {
    json_t *greedy = json_object_get(prompt, "greedy");
    json_t *margins = json_object_get(prompt, "greedy_margins");
    for (size_t i = 0; i < json_array_size(greedy); i++) {
        if (jnum(margins, i) < tol) break;
        int32_t want = (int32_t)json_integer_value(json_array_get(greedy, i));
        int32_t got = argmax(last, n_vocab);
        err->greedy_steps++;
        if (got != want) {
            err->greedy_bad++;
            break;
        }
        assert_int_equal(ar_seq_eval(s, &want, 1, AR_LOGITS_LAST, last), AR_OK);
    }
}

void golden_run(ar_engine *eng, json_t *golden, const char *dir, double tol, golden_errors *err) {
    int n_vocab = ar_engine_n_vocab(eng);
    float *logits = malloc((size_t)CHUNK * (size_t)n_vocab * sizeof *logits);
    float *last = malloc((size_t)n_vocab * sizeof *last);
    assert_non_null(logits);
    assert_non_null(last);
    const char *name;
    json_t *prompt;
    json_object_foreach(json_object_get(golden, "prompts"), name, prompt) {
        json_t *jids = json_object_get(prompt, "ids");
        int n = (int)json_array_size(jids);
        int32_t *ids = malloc((size_t)n * sizeof *ids);
        assert_non_null(ids);
        for (int i = 0; i < n; i++) ids[i] = (int32_t)json_integer_value(json_array_get(jids, i));
        ar_seq_params sp = ar_seq_default_params();
        sp.n_ctx = n + 32;
        sp.n_batch = 64; /* chunks of 128 run as two forward passes of 64 */
        ar_seq *s = NULL;
        if (ar_seq_new(eng, &sp, &s) != AR_OK) fail_msg("%s: %s", name, ar_seq_errmsg(s));
        for (int done = 0; done < n;) {
            int c = n - done < CHUNK ? n - done : CHUNK;
            if (ar_seq_eval(s, ids + done, c, AR_LOGITS_ALL, logits) != AR_OK)
                fail_msg("%s: %s", name, ar_seq_errmsg(s));
            for (int i = 0; i < c; i++)
                check_position(logits + (size_t)i * (size_t)n_vocab, n_vocab,
                               json_object_get(prompt, "lse"), json_object_get(prompt, "top_ids"),
                               json_object_get(prompt, "top_vals"), (size_t)(done + i), tol, err);
            done += c;
            if (done == n)
                memcpy(last, logits + (size_t)(c - 1) * (size_t)n_vocab,
                       (size_t)n_vocab * sizeof *last);
        }
        check_last(last, n_vocab, dir, prompt, err);
        json_t *routes = json_object_get(prompt, "route_scores");
        if (routes) check_routes(eng, s, last, routes, err);
        check_greedy(s, last, n_vocab, prompt, tol, err);
        ar_seq_free(s);
        free(ids);
    }
    free(logits);
    free(last);
}

void golden_compare_recorded(json_t *golden, json_t *other, const char *dir,
                             const char *other_prefix, golden_errors *err) {
    (void)other_prefix;
    const char *name;
    json_t *gp;
    json_object_foreach(json_object_get(golden, "prompts"), name, gp) {
        json_t *op = json_object_get(json_object_get(other, "prompts"), name);
        if (!op) fail_msg("recorded output lacks prompt %s", name);
        json_t *gl = json_object_get(gp, "lse"), *ol = json_object_get(op, "lse");
        for (size_t i = 0; i < json_array_size(gl); i++)
            maxin(&err->lse, fabs(jnum(gl, i) - jnum(ol, i)));
        /* top: the other's top values where its ids match the golden ones */
        json_t *gi = json_object_get(gp, "top_ids"), *gv = json_object_get(gp, "top_vals");
        json_t *oi = json_object_get(op, "top_ids"), *ov = json_object_get(op, "top_vals");
        for (size_t t = 0; t < json_array_size(gi); t++) {
            if (json_integer_value(json_array_get(json_array_get(gi, t), 0)) ==
                json_integer_value(json_array_get(json_array_get(oi, t), 0)))
                err->top1_agree++;
            maxin(&err->top, fabs(jnum(json_array_get(gv, t), 0) - jnum(json_array_get(ov, t), 0)));
            err->positions++;
        }
        const char *gf = json_string_value(json_object_get(gp, "last_logits_file"));
        const char *of = json_string_value(json_object_get(op, "last_logits_file"));
        if (dir && gf && of) {
            size_t len;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, gf);
            char *g = ar_test_read_file(path, &len);
            snprintf(path, sizeof path, "%s/%s", dir, of);
            size_t len2;
            char *o = ar_test_read_file(path, &len2);
            assert_non_null(g);
            assert_non_null(o);
            assert_int_equal(len, len2);
            for (size_t i = 0; i < len / sizeof(float); i++)
                maxin(&err->last, fabs((double)((float *)g)[i] - ((float *)o)[i]));
            free(g);
            free(o);
        }
    }
}

void golden_print(const char *label, const golden_errors *e) {
    fprintf(stderr,
            "%-28s lse %.3g  top16 %.3g  last %.3g  route %.3g  top1 %d/%d  id-mismatch %d  "
            "greedy %d/%d\n",
            label, e->lse, e->top, e->last, e->route, e->top1_agree, e->positions, e->id_mismatch,
            e->greedy_steps - e->greedy_bad, e->greedy_steps);
}

/* A tree of continuations evaluated in one pass gives, for every token, the logits of its
 * root-to-token path evaluated on its own, bit for bit; selected logits equal the same
 * entries of the full vector. Both KV types, two tiers. */
void golden_check_tree_and_select(ar_engine *e, const int32_t *ids, int n_prefix, ar_kv_type kv) {
    /* 0 -> 1 -> 2 -> 3, 1 -> 4 -> 5, 0 -> 6, 7 (another root), 7 -> 8 */
    static const int32_t parents[] = {-1, 0, 1, 2, 1, 4, 0, -1, 7};
    enum { N = sizeof parents / sizeof parents[0] };
    int32_t tokens[N];
    for (int i = 0; i < N; i++) tokens[i] = ids[n_prefix + 3 * i + 1];
    int nv = ar_engine_n_vocab(e);
    size_t bytes = (size_t)nv * sizeof(float);
    ar_seq_params sp = ar_seq_default_params();
    sp.n_ctx = n_prefix + N + 4;
    sp.kv_type = kv;
    ar_seq *s = NULL, *path = NULL;
    assert_int_equal(ar_seq_new(e, &sp, &s), AR_OK);
    assert_int_equal(ar_seq_new(e, &sp, &path), AR_OK);
    assert_int_equal(ar_seq_eval(s, ids, n_prefix, AR_LOGITS_NONE, NULL), AR_OK);
    float *tree = malloc(N * bytes), *one = malloc(bytes);
    assert_int_equal(ar_seq_eval_tree(s, tokens, parents, N, tree), AR_OK);
    assert_int_equal(ar_seq_n_past(s), n_prefix);
    for (int i = 0; i < N; i++) {
        int32_t seqtok[N];
        int d = 0;
        for (int a = i; a >= 0; a = parents[a]) d++;
        int len = d;
        for (int a = i; a >= 0; a = parents[a]) seqtok[--d] = tokens[a];
        assert_int_equal(ar_seq_copy(path, s, n_prefix), AR_OK);
        assert_int_equal(ar_seq_eval(path, seqtok, len, AR_LOGITS_LAST, one), AR_OK);
        assert_memory_equal(tree + (size_t)i * (size_t)nv, one, bytes);
    }
    /* The tree left no trace: the sequence continues as if it had not run. */
    float *after = malloc(bytes);
    assert_int_equal(ar_seq_eval(s, tokens, 1, AR_LOGITS_LAST, after), AR_OK);
    assert_memory_equal(after, tree, bytes);
    /* Selected logits of one more token equal the full vector's entries. */
    int32_t sel[] = {0, nv - 1, tokens[2], 17, tokens[2]};
    float got[5];
    assert_int_equal(ar_seq_copy(path, s, ar_seq_n_past(s)), AR_OK);
    assert_int_equal(ar_seq_eval(s, tokens + 3, 2, AR_LOGITS_LAST, one), AR_OK);
    assert_int_equal(ar_seq_eval_select(path, tokens + 3, 2, sel, 5, got), AR_OK);
    for (int i = 0; i < 5; i++) assert_memory_equal(&got[i], &one[sel[i]], sizeof(float));
    /* Selected logits after several tokens of one call equal those of calls that end there;
     * cutting the call's tail off again (a wrong guess) and going on equals never having
     * run it. */
    {
        int32_t base = ar_seq_n_past(path), at[2] = {1, 4};
        float many[10], a[5], b[5];
        assert_int_equal(ar_seq_copy(s, path, base), AR_OK);
        assert_int_equal(ar_seq_eval_select_at(path, tokens, 5, at, 2, sel, 5, many), AR_OK);
        assert_int_equal(ar_seq_n_past(path), base + 5);
        assert_int_equal(ar_seq_eval_select(s, tokens, 2, sel, 5, a), AR_OK);
        assert_memory_equal(many, a, sizeof a);
        assert_int_equal(ar_seq_eval_select(s, tokens + 2, 3, sel, 5, b), AR_OK);
        assert_memory_equal(many + 5, b, sizeof b);
        assert_int_equal(ar_seq_truncate(path, base + 2), AR_OK);
        assert_int_equal(ar_seq_truncate(s, base + 2), AR_OK);
        assert_int_equal(ar_seq_eval_select(path, tokens + 6, 1, sel, 5, a), AR_OK);
        assert_int_equal(ar_seq_eval_select(s, tokens + 6, 1, sel, 5, b), AR_OK);
        assert_memory_equal(a, b, sizeof a);
        int32_t unordered[2] = {3, 3}, outside[1] = {5};
        assert_int_equal(ar_seq_eval_select_at(path, tokens, 5, unordered, 2, sel, 5, many),
                         AR_ERR_INVALID_ARG);
        assert_int_equal(ar_seq_eval_select_at(path, tokens, 5, outside, 1, sel, 5, many),
                         AR_ERR_INVALID_ARG);
        assert_int_equal(ar_seq_eval_select_at(path, tokens, 5, at, 0, sel, 5, many),
                         AR_ERR_INVALID_ARG);
    }
    /* Bad trees and selections are refused. */
    int32_t bad_parent[] = {-1, 1};
    assert_int_equal(ar_seq_eval_tree(s, tokens, bad_parent, 2, tree), AR_ERR_INVALID_ARG);
    int32_t bad_sel[] = {nv};
    assert_int_equal(ar_seq_eval_select(s, tokens, 1, bad_sel, 1, got), AR_ERR_INVALID_ARG);
    free(after);
    free(tree);
    free(one);
    ar_seq_free(s);
    ar_seq_free(path);
}
