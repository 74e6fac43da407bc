/*
 * test_pull.c - model download (src/hub): reference parsing, cache paths, and ar_pull()
 * against a fake hub on 127.0.0.1 (tests/common/fake_hub.c), fully offline.
 *
 * Each transfer test starts a fresh fake hub and a fresh cache folder, pulls, and checks the
 * file, the sidecar, the result fields and what the servers saw: redirects, resume with the
 * remaining bytes only, checksum failure, 404, 401 and the token kept from the CDN, a server
 * that ignores Range, a 416 on a complete part, a stalled transfer, cancellation, and the
 * huggingface_hub cache.
 */
#include "testutil.h"

#include "archrouter.h"
#include "fake_hub.h"
#include "hub/hub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPO  "acme/Tiny-Router.gguf"
#define FNAME "tiny-Q4_K_M.gguf"
#define SIZE  (300 * 1000 + 7)

/* ---- pieces ---------------------------------------------------------------------------- */

static void test_parse_ref(void **state) {
    (void)state;
    ar_hub_ref r;
    assert_int_equal(ar_hub_parse_ref(NULL, &r, NULL), AR_OK);
    assert_string_equal(r.owner, "katanemo");
    assert_string_equal(r.name, "Arch-Router-1.5B.gguf");
    assert_string_equal(r.revision, "main");
    assert_string_equal(r.file, AR_PULL_DEFAULT_FILE);

    assert_int_equal(ar_hub_parse_ref("a/b", &r, NULL), AR_OK);
    assert_string_equal(r.file, AR_PULL_DEFAULT_FILE);
    assert_int_equal(ar_hub_parse_ref("a/b@v1.0:sub/x.gguf", &r, NULL), AR_OK);
    assert_string_equal(r.owner, "a");
    assert_string_equal(r.name, "b");
    assert_string_equal(r.revision, "v1.0");
    assert_string_equal(r.file, "sub/x.gguf");
    assert_int_equal(ar_hub_parse_ref("a/b@refs/pr/1:x", &r, NULL), AR_OK);
    assert_string_equal(r.revision, "refs/pr/1");

    static const char *const bad[] = {
        "noslash",  "a/b/c",         "/b",       "a/",          "a/b:",    "a/b:../x",
        "a/b:/etc", "a/b:x/../../y", "a/b@:x",   "a/b@..:x",    "../b:x",  "a b/c",
        "a/b:x y",  "a/b:x\\y",      "a/b:x//y", "a/b@a/../..", "a/b:x\n", "a/b:%2e%2e",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ar_err e = {{0}};
        if (ar_hub_parse_ref(bad[i], &r, &e) != AR_ERR_INVALID_ARG)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(e.msg) > 0);
    }
    char long_ref[3000];
    memset(long_ref, 'x', sizeof long_ref - 1);
    long_ref[sizeof long_ref - 1] = 0;
    long_ref[5] = '/';
    assert_int_equal(ar_hub_parse_ref(long_ref, &r, NULL), AR_ERR_INVALID_ARG);
}

static void test_etag(void **state) {
    (void)state;
    char h[65];
    const char *hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char quoted[80];
    snprintf(quoted, sizeof quoted, "\"%s\"", hex);
    assert_true(ar_hub_etag_sha256(quoted, h));
    assert_string_equal(h, hex);
    snprintf(quoted, sizeof quoted, "W/\"%s\"", hex);
    assert_true(ar_hub_etag_sha256(quoted, h));
    assert_true(
        ar_hub_etag_sha256("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", h));
    assert_string_equal(h, hex);
    assert_false(ar_hub_etag_sha256("\"d41d8cd98f00b204e9800998ecf8427e\"", h)); /* md5 */
    assert_false(ar_hub_etag_sha256("\"", h));
    assert_false(ar_hub_etag_sha256("", h));
    assert_false(ar_hub_etag_sha256(NULL, h));
    assert_false(ar_hub_etag_sha256(
        "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\"", h));
}

static void test_cache_paths(void **state) {
    (void)state;
    char out[4096];
    ar_hub_ref r;
    assert_int_equal(ar_hub_parse_ref("o/n:f.gguf", &r, NULL), AR_OK);
    assert_int_equal(ar_hub_cache_dir("/x", out, sizeof out, NULL), AR_OK);
    assert_string_equal(out, "/x");
    setenv("ARCHROUTER_CACHE", "/ac", 1);
    assert_int_equal(ar_hub_cache_dir(NULL, out, sizeof out, NULL), AR_OK);
    assert_string_equal(out, "/ac");
    unsetenv("ARCHROUTER_CACHE");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    assert_int_equal(ar_hub_cache_dir(NULL, out, sizeof out, NULL), AR_OK);
    assert_string_equal(out, "/xdg/archrouter");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    assert_int_equal(ar_hub_cache_dir(NULL, out, sizeof out, NULL), AR_OK);
    assert_string_equal(out, "/home/u/.cache/archrouter");
    assert_int_equal(ar_hub_hf_cache_dir(NULL, out, sizeof out, NULL), AR_OK);
    assert_string_equal(out, "/home/u/.cache/huggingface/hub");
    setenv("HF_HOME", "/hf", 1);
    assert_int_equal(ar_hub_hf_cache_dir(NULL, out, sizeof out, NULL), AR_OK);
    assert_string_equal(out, "/hf/hub");
    setenv("HF_HUB_CACHE", "/hubc", 1);
    assert_int_equal(ar_hub_hf_cache_dir(NULL, out, sizeof out, NULL), AR_OK);
    assert_string_equal(out, "/hubc");
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");

    assert_int_equal(ar_hub_cache_path("/c", &r, out, sizeof out, NULL), AR_OK);
    assert_string_equal(out, "/c/models/o--n/f.gguf");
    assert_int_equal(ar_hub_parse_ref("o/n@refs/pr/2:f.gguf", &r, NULL), AR_OK);
    assert_int_equal(ar_hub_cache_path("/c", &r, out, sizeof out, NULL), AR_OK);
    assert_string_equal(out, "/c/models/o--n@refs--pr--2/f.gguf");
    char small[8];
    assert_int_equal(ar_hub_cache_path("/c", &r, small, sizeof small, NULL),
                     AR_ERR_BUFFER_TOO_SMALL);
}

/* ---- transfers ------------------------------------------------------------------------- */

typedef struct fixture {
    unsigned char *data;
    char sha[65];
    fake_hub *hub;
    char cache[512];
    char final_path[1024], part_path[1100];
    ar_pull_params p;
} fixture;

static int setup(void **state) {
    static int n;
    fixture *f = calloc(1, sizeof *f);
    f->data = malloc(SIZE);
    uint32_t x = 12345;
    for (size_t i = 0; i < SIZE; i++) {
        x = x * 1103515245u + 12345u;
        f->data[i] = (unsigned char)(x >> 16);
    }
    fake_hub_sha256_hex(f->data, SIZE, f->sha);
    f->hub = fake_hub_start(REPO, FNAME, f->data, SIZE);
    assert_non_null(f->hub);
    snprintf(f->cache, sizeof f->cache, "%s/cache%d", ar_test_temp_dir(), n++);
    snprintf(f->final_path, sizeof f->final_path, "%s/models/acme--Tiny-Router.gguf/%s", f->cache,
             FNAME);
    snprintf(f->part_path, sizeof f->part_path, "%s.part", f->final_path);
    f->p = ar_pull_default_params();
    f->p.cache_dir = f->cache;
    f->p.endpoint = fake_hub_endpoint(f->hub);
    f->p.token = ""; /* never the developer's own HF_TOKEN */
    f->p.use_hf_cache = false;
    f->p.connect_timeout_s = 5;
    f->p.low_speed_time_s = 10;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    fake_hub_stop(f->hub);
    free(f->data);
    free(f);
    return 0;
}

static int64_t file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void assert_final_ok(fixture *f) {
    size_t len = 0;
    char *got = ar_test_read_file(f->final_path, &len);
    assert_non_null(got);
    assert_int_equal(len, SIZE);
    assert_memory_equal(got, f->data, SIZE);
    free(got);
    assert_int_equal(file_size(f->part_path), -1);
    char side[1200];
    snprintf(side, sizeof side, "%s.sha256", f->final_path);
    char *s = ar_test_read_file(side, NULL);
    assert_non_null(s);
    char want[128];
    snprintf(want, sizeof want, "%s  %s\n", f->sha, FNAME);
    assert_string_equal(s, want);
    free(s);
}

static ar_status pull(fixture *f, ar_pull_result *res, char *err, size_t cap) {
    return ar_pull(REPO ":" FNAME, &f->p, res, err, cap);
}

static void test_fresh_download_then_cached(void **state) {
    fixture *f = *state;
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    assert_string_equal(res.path, f->final_path);
    assert_string_equal(res.sha256, f->sha);
    assert_int_equal(res.size, SIZE);
    assert_int_equal(res.bytes_received, SIZE);
    assert_int_equal(res.resumed_from, 0);
    assert_true(res.downloaded);
    assert_final_ok(f);
    fake_hub_stats s = fake_hub_get_stats(f->hub);
    assert_int_equal(s.hub_requests, 1);
    assert_int_equal(s.cdn_requests, 1);
    assert_string_equal(s.cdn_range, "");
    assert_string_equal(s.hub_auth, "");

    /* Already there: no request at all. */
    fake_hub_reset_stats(f->hub);
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    assert_false(res.downloaded);
    assert_string_equal(res.path, f->final_path);
    assert_string_equal(res.sha256, f->sha);
    assert_int_equal(fake_hub_get_stats(f->hub).hub_requests, 0);

    char path[4096];
    assert_int_equal(ar_model_resolve(REPO ":" FNAME, &f->p, path, sizeof path, err, sizeof err),
                     AR_OK);
    assert_string_equal(path, f->final_path);

    /* --force downloads again. */
    f->p.force = true;
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    assert_true(res.downloaded);
    assert_int_equal(res.bytes_received, SIZE);
    assert_int_equal(fake_hub_get_stats(f->hub).hub_requests, 1);
    assert_final_ok(f);
}

static void test_resume_sends_only_the_rest(void **state) {
    fixture *f = *state;
    fake_hub_mode m = {.cut_after = 100000};
    fake_hub_set_mode(f->hub, &m);
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_ERR_NETWORK);
    assert_non_null(strstr(err, "run the same command again to resume"));
    assert_int_equal(file_size(f->final_path), -1);
    int64_t have = file_size(f->part_path);
    assert_true(have > 0 && have <= 100000);

    m.cut_after = 0;
    fake_hub_set_mode(f->hub, &m);
    fake_hub_reset_stats(f->hub);
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    assert_true(res.downloaded);
    assert_int_equal(res.resumed_from, have);
    assert_int_equal(res.bytes_received, SIZE - have);
    fake_hub_stats s = fake_hub_get_stats(f->hub);
    char want[64];
    snprintf(want, sizeof want, "bytes=%lld-", (long long)have);
    assert_string_equal(s.cdn_range, want);
    assert_int_equal(s.cdn_body_bytes, SIZE - have); /* only the rest crossed the wire */
    assert_final_ok(f);
}

static void test_wrong_checksum(void **state) {
    fixture *f = *state;
    fake_hub_mode m = {.wrong_sha = true};
    fake_hub_set_mode(f->hub, &m);
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_ERR_CHECKSUM);
    assert_non_null(strstr(err, "checksum mismatch"));
    assert_non_null(strstr(err, f->sha)); /* the actual hash */
    char bad[65];
    fake_hub_sha256_hex("other bytes", 11, bad);
    assert_non_null(strstr(err, bad)); /* the expected one */
    assert_int_equal(file_size(f->part_path), -1);
    assert_int_equal(file_size(f->final_path), -1);
    assert_false(res.downloaded);
}

static void test_not_found(void **state) {
    fixture *f = *state;
    ar_pull_result res;
    char err[1024];
    assert_int_equal(ar_pull(REPO ":missing.gguf", &f->p, &res, err, sizeof err), AR_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "HTTP 404"));
    assert_non_null(strstr(err, "the file is not in the repository"));
    assert_non_null(strstr(err, "'missing.gguf'"));
    assert_non_null(strstr(err, "'acme/Tiny-Router.gguf'"));
    assert_int_equal(ar_pull("acme/other:" FNAME, &f->p, &res, err, sizeof err), AR_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "the repository does not exist"));
    char part[1200];
    snprintf(part, sizeof part, "%s/models/acme--Tiny-Router.gguf/missing.gguf.part", f->cache);
    assert_int_equal(file_size(part), -1); /* nothing left behind */
}

static void test_token_goes_to_hub_only(void **state) {
    fixture *f = *state;
    fake_hub_mode m = {.token = "s3cret-token"};
    fake_hub_set_mode(f->hub, &m);
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_ERR_AUTH);
    assert_non_null(strstr(err, "HTTP 401"));
    assert_non_null(strstr(err, "HF_TOKEN"));
    assert_int_equal(fake_hub_get_stats(f->hub).cdn_requests, 0);

    f->p.token = "wrong";
    assert_int_equal(pull(f, &res, err, sizeof err), AR_ERR_AUTH);
    assert_null(strstr(err, "wrong")); /* never print the token */

    fake_hub_reset_stats(f->hub);
    f->p.token = "s3cret-token";
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    fake_hub_stats s = fake_hub_get_stats(f->hub);
    assert_string_equal(s.hub_auth, "Bearer s3cret-token");
    assert_int_equal(s.cdn_requests, 1);
    assert_string_equal(s.cdn_auth, ""); /* another origin: no token */
    assert_final_ok(f);
}

static void test_server_ignores_range(void **state) {
    fixture *f = *state;
    /* A part holding garbage: a server that ignores Range must make us start over. */
    char dir[1100];
    snprintf(dir, sizeof dir, "mkdir -p '%s/models/acme--Tiny-Router.gguf'", f->cache);
    assert_int_equal(system(dir), 0);
    FILE *p = fopen(f->part_path, "wb");
    assert_non_null(p);
    for (int i = 0; i < 5000; i++) fputc('z', p);
    fclose(p);
    fake_hub_mode m = {.ignore_range = true};
    fake_hub_set_mode(f->hub, &m);
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    assert_string_equal(fake_hub_get_stats(f->hub).cdn_range, "bytes=5000-");
    assert_int_equal(res.bytes_received, SIZE);
    assert_final_ok(f);
}

static void test_complete_part_gets_416(void **state) {
    fixture *f = *state;
    char dir[1100];
    snprintf(dir, sizeof dir, "mkdir -p '%s/models/acme--Tiny-Router.gguf'", f->cache);
    assert_int_equal(system(dir), 0);
    FILE *p = fopen(f->part_path, "wb");
    assert_non_null(p);
    assert_int_equal(fwrite(f->data, 1, SIZE, p), SIZE);
    fclose(p);
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    assert_int_equal(res.bytes_received, 0);
    assert_int_equal(fake_hub_get_stats(f->hub).cdn_body_bytes, 0);
    assert_final_ok(f);
}

static void test_oversized_part_restarts(void **state) {
    fixture *f = *state;
    char dir[1100];
    snprintf(dir, sizeof dir, "mkdir -p '%s/models/acme--Tiny-Router.gguf'", f->cache);
    assert_int_equal(system(dir), 0);
    FILE *p = fopen(f->part_path, "wb");
    assert_non_null(p);
    for (int i = 0; i < SIZE + 10; i++) fputc('q', p);
    fclose(p);
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK); /* 416, then from 0 */
    assert_int_equal(res.bytes_received, SIZE);
    assert_final_ok(f);
}

static void test_direct_without_redirect(void **state) {
    fixture *f = *state;
    fake_hub_mode m = {.direct = true};
    fake_hub_set_mode(f->hub, &m);
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    assert_string_equal(res.sha256, f->sha);
    assert_final_ok(f);
}

static void test_offline(void **state) {
    fixture *f = *state;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", fake_hub_closed_port());
    f->p.endpoint = endpoint;
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_ERR_NETWORK);
    assert_non_null(strstr(err, "cannot reach"));
    assert_non_null(strstr(err, endpoint));
    assert_non_null(strstr(err, "HF_ENDPOINT"));
    assert_non_null(strstr(err, "ARCHROUTER_MODEL"));
    assert_int_equal(file_size(f->part_path), -1);

    char path[4096];
    assert_int_equal(ar_model_resolve(REPO ":" FNAME, &f->p, path, sizeof path, err, sizeof err),
                     AR_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "archrouter pull " REPO ":" FNAME));
}

static void test_stall_times_out(void **state) {
    fixture *f = *state;
    fake_hub_mode m = {.stall = true};
    fake_hub_set_mode(f->hub, &m);
    f->p.low_speed_time_s = 1;
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_ERR_NETWORK);
    assert_non_null(strstr(err, "resume"));
    assert_int_equal(file_size(f->part_path), 1); /* kept for the next run */
}

static int cancel_soon(void *user, const ar_pull_progress *p) {
    int *calls = user;
    ++*calls;
    return p->phase == AR_PULL_DOWNLOADING && p->done > 0;
}

static void test_cancel_keeps_part(void **state) {
    fixture *f = *state;
    /* The server sends one byte and holds the rest, so the callback sees a transfer in
     * progress (on 127.0.0.1 a free-flowing body can be complete before it is called). */
    fake_hub_mode m = {.stall = true};
    fake_hub_set_mode(f->hub, &m);
    int calls = 0;
    f->p.progress = cancel_soon;
    f->p.user = &calls;
    ar_pull_result res;
    char err[1024];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_ERR_CANCELLED);
    assert_true(calls > 0);
    int64_t have = file_size(f->part_path);
    assert_int_equal(have, 1);
    m.stall = false;
    fake_hub_set_mode(f->hub, &m);
    f->p.progress = NULL;
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    assert_int_equal(res.resumed_from, have);
    assert_final_ok(f);
}

static void test_hf_cache_is_used(void **state) {
    fixture *f = *state;
    char hub[600], cmd[8192], want[2048];
    snprintf(hub, sizeof hub, "%s/hfhub", f->cache);
    const char *commit = "0123456789abcdef0123456789abcdef01234567";
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/models--acme--Tiny-Router.gguf/refs' "
             "'%s/models--acme--Tiny-Router.gguf/snapshots/%s' && "
             "printf %s > '%s/models--acme--Tiny-Router.gguf/refs/main' && "
             "printf data > '%s/models--acme--Tiny-Router.gguf/snapshots/%s/%s'",
             hub, hub, commit, commit, hub, hub, commit, FNAME);
    assert_int_equal(system(cmd), 0);
    snprintf(want, sizeof want, "%s/models--acme--Tiny-Router.gguf/snapshots/%s/%s", hub, commit,
             FNAME);
    f->p.use_hf_cache = true;
    f->p.hf_hub_cache = hub;
    ar_pull_result res;
    char err[1024], path[4096];
    assert_int_equal(pull(f, &res, err, sizeof err), AR_OK);
    assert_string_equal(res.path, want);
    assert_true(res.from_hf_cache);
    assert_false(res.downloaded);
    assert_int_equal(fake_hub_get_stats(f->hub).hub_requests, 0);
    assert_int_equal(ar_model_resolve(REPO ":" FNAME, &f->p, path, sizeof path, NULL, 0), AR_OK);
    assert_string_equal(path, want);
    /* by commit */
    char ref[256];
    snprintf(ref, sizeof ref, REPO "@%s:" FNAME, commit);
    assert_int_equal(ar_model_resolve(ref, &f->p, path, sizeof path, NULL, 0), AR_OK);
    assert_string_equal(path, want);
    /* a path is a path */
    assert_int_equal(ar_model_resolve(want, &f->p, path, sizeof path, NULL, 0), AR_OK);
    assert_string_equal(path, want);
    char small[16];
    assert_int_equal(ar_model_resolve(want, &f->p, small, sizeof small, NULL, 0),
                     AR_ERR_BUFFER_TOO_SMALL);
    assert_int_equal(ar_model_resolve("no/such:file", &f->p, path, sizeof path, err, sizeof err),
                     AR_ERR_NOT_FOUND);
    assert_int_equal(ar_model_resolve("./nope.gguf", &f->p, path, sizeof path, err, sizeof err),
                     AR_ERR_NOT_FOUND);
    assert_non_null(strstr(err, "no such file"));
}

static void test_bad_args(void **state) {
    fixture *f = *state;
    char err[256];
    assert_int_equal(ar_pull(REPO, &f->p, NULL, err, sizeof err), AR_ERR_INVALID_ARG);
    ar_pull_result res;
    assert_int_equal(ar_pull("nonsense", &f->p, &res, err, sizeof err), AR_ERR_INVALID_ARG);
    assert_non_null(strstr(err, "OWNER/NAME"));
    assert_int_equal(ar_model_resolve(NULL, &f->p, NULL, 0, NULL, 0), AR_ERR_INVALID_ARG);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ref),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_cache_paths),
        T(test_fresh_download_then_cached),
        T(test_resume_sends_only_the_rest),
        T(test_wrong_checksum),
        T(test_not_found),
        T(test_token_goes_to_hub_only),
        T(test_server_ignores_range),
        T(test_complete_part_gets_416),
        T(test_oversized_part_restarts),
        T(test_direct_without_redirect),
        T(test_offline),
        T(test_stall_times_out),
        T(test_cancel_keeps_part),
        T(test_hf_cache_is_used),
        T(test_bad_args),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
