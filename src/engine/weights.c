/*
 * weights.c - the engine's own copy of the weight matrices: in 2 MB pages, and for F16 and
 * BF16 in the fast precision repacked into 16-bit lanes.
 *
 * Why a copy. The products read every weight once per forward pass, block after block.
 * Used in place from the model's file mapping, the weights sit in 4 KB pages: each 4 KB
 * costs a TLB miss and a page walk, and the hardware prefetchers stop at page boundaries.
 * Measured with perf on a Q8_0 model (fast precision, 256-token prefill): unpacking weight
 * blocks took 15.7% of the time from the mapping and 4.3% from a copy in transparent huge
 * pages. So when the system offers transparent huge pages (/sys/kernel/mm/
 * transparent_hugepage/enabled is not "never"), the engine copies each matrix (wq, wk, wv,
 * wo, gate, up, down, output) into one anonymous allocation aligned to 2 MB and advised
 * MADV_HUGEPAGE, read-only once filled; ar_engine_params.in_place keeps the model's bytes
 * instead.
 *
 * 16-bit lanes (kernels.h): in the fast precision, F16 and BF16 matrices are repacked into
 * lane groups (1088 bytes per 512 weights, 6% above float16) whatever in_place says, since
 * their kernel (gemm_l16, decode and prefill alike) multiplies only that form.
 *
 * The engine then works from a copy of the model's weight table whose matrices point at
 * engine-made tensors (the packed ones of type AR_TYPE_L16). Matrices are copied one at a
 * time on the engine's threads, and right after each, the pages of its original bytes are
 * given back (madvise MADV_DONTNEED) when they come from a mapped file: clean file pages,
 * read again from the file if anything touches them. So the process holds one copy, not two.
 * The token embeddings are looked up from the copy of the output matrix when the two are tied
 * and the output was copied as is; otherwise from the model's bytes (only the rows looked up
 * come back into memory).
 */
#include "engine/engine.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HUGE_PAGE ((size_t)2 << 20)

typedef struct copy_job {
    const ar_kernels *k;
    const ar_tensor *src;
    uint8_t *dst;
    bool pack;      /* into 16-bit lanes; else the rows' bytes as they are */
    int64_t r0, r1; /* the rows of this step */
} copy_job;

static size_t packed_row_bytes(int64_t K) {
    return (size_t)ar_lane_groups(K, 32) * sizeof(ar_block_wl16);
}

static void copy_rows(int ith, int nth, void *ctx) {
    const copy_job *j = ctx;
    const ar_tensor *w = j->src;
    const int64_t K = w->ne[0], n = j->r1 - j->r0;
    const size_t src_row = (size_t)(w->n_bytes / (uint64_t)w->ne[1]);
    const int64_t r0 = j->r0 + n * ith / nth, r1 = j->r0 + n * (ith + 1) / nth;
    if (!j->pack) {
        memcpy(j->dst + (size_t)r0 * src_row, w->data + (size_t)r0 * src_row,
               (size_t)(r1 - r0) * src_row);
        return;
    }
    const size_t dst_row = packed_row_bytes(K);
    for (int64_t r = r0; r < r1; r++)
        j->k->pack_l16[w->type](K, w->data + (size_t)r * src_row,
                                (ar_block_wl16 *)(void *)(j->dst + (size_t)r * dst_row));
}

/* Whether matrix w goes into 16-bit lanes in this engine. */
static bool packable(const ar_engine *e, const ar_tensor *w) {
    return e->params.precision == AR_PRECISION_FAST && e->k.gemm_l16 && e->k.quantize_l16 &&
           w->type < AR_N_TYPES && e->k.pack_l16[w->type] && w->ne[0] % 32 == 0 && w->ne[1] > 0;
}

/* Bytes of the engine's copy of matrix w: packed into lanes, as stored, or none (left in
 * place). */
static size_t owned_bytes(const ar_engine *e, const ar_tensor *w, bool copy_all) {
    return packable(e, w) ? packed_row_bytes(w->ne[0]) * (size_t)w->ne[1]
           : copy_all     ? (size_t)w->n_bytes
                          : 0;
}

/* Whether the system backs anonymous memory advised MADV_HUGEPAGE with huge pages. */
static bool huge_pages_available(void) {
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return false;
    char line[128] = {0};
    bool ok = fgets(line, sizeof line, f) && !strstr(line, "[never]");
    fclose(f);
    return ok;
}

/* Give back the whole pages of bytes [a, b) of matrix w when they are file pages. */
static void release_source(const ar_engine *e, const ar_tensor *w, const uint8_t *a,
                           const uint8_t *b) {
    if (w->file < 0 || w->file >= e->model->n_files || !e->model->files[w->file].mapped) return;
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)a + page - 1) & ~(page - 1), hi = (uintptr_t)b & ~(page - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Matrix src copied (or packed) to dst on the engine's threads, COPY_STEP source bytes at a
 * time, each step's source pages given back after it (so the process holds at most one step
 * of both copies). */
#define COPY_STEP ((size_t)32 << 20)

static void copy_matrix(ar_engine *e, const ar_tensor *src, uint8_t *dst, bool pack) {
    const int64_t N = src->ne[1];
    const size_t src_row = (size_t)(src->n_bytes / (uint64_t)N);
    int64_t rows = (int64_t)(COPY_STEP / (src_row ? src_row : 1));
    if (rows < 1) rows = 1;
    for (int64_t r = 0; r < N; r += rows) {
        copy_job j = {.k = &e->k,
                      .src = src,
                      .dst = dst,
                      .pack = pack,
                      .r0 = r,
                      .r1 = r + rows < N ? r + rows : N};
        ar_pool_run(e->pool, copy_rows, &j);
        release_source(e, src, src->data + (size_t)j.r0 * src_row,
                       src->data + (size_t)j.r1 * src_row);
    }
}

/* One anonymous allocation of `bytes`, aligned to 2 MB and advised MADV_HUGEPAGE. */
static uint8_t *alloc_huge(ar_engine *e, size_t bytes) {
    const size_t keep = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE, len = keep + HUGE_PAGE;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    uintptr_t base = (uintptr_t)p, start = (base + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    /* trim the slack before and after the aligned range */
    if (start > base) munmap(p, start - base);
    const size_t tail = len - (start - base) - keep;
    if (tail) munmap((void *)(start + keep), tail);
    (void)madvise((void *)start, keep, MADV_HUGEPAGE);
    e->own_len = keep;
    return (uint8_t *)start;
}

ar_status ar_engine_own_weights(ar_engine *e) {
    const ar_qwen2_hparams *hp = e->hp;
    const ar_qwen2_weights *mw = &e->model->w;
    const int n_mats = 7 * hp->n_layers + 1;
    const bool copy_all = !e->params.in_place && huge_pages_available();
    const ar_tensor **src = malloc((size_t)n_mats * sizeof *src);
    if (!src) return ar_errf(&e->err, AR_ERR_NOMEM, "out of memory for the weight table");
    for (int l = 0; l < hp->n_layers; l++) {
        const ar_qwen2_layer *w = &mw->layers[l];
        const ar_tensor *m[7] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
        memcpy(src + 7 * l, m, sizeof m);
    }
    src[n_mats - 1] = mw->output;
    size_t total = 0;
    int n_own = 0;
    for (int i = 0; i < n_mats; i++) {
        const size_t bytes = owned_bytes(e, src[i], copy_all);
        if (bytes) n_own++;
        total += (bytes + 63) & ~(size_t)63;
    }
    if (!n_own) {
        free(src);
        return AR_OK;
    }
    e->own_data = alloc_huge(e, total);
    e->own_tensors = calloc((size_t)n_mats, sizeof *e->own_tensors);
    e->own_layers = calloc((size_t)hp->n_layers, sizeof *e->own_layers);
    const ar_tensor **dst = malloc((size_t)n_mats * sizeof *dst);
    if (!e->own_data || !e->own_tensors || !e->own_layers || !dst) {
        free(src);
        free(dst);
        return ar_errf(&e->err, AR_ERR_NOMEM,
                       "out of memory for the engine's copy of the weights (%.1f MiB)",
                       (double)total / 1048576.0);
    }
    uint8_t *p = e->own_data;
    for (int i = 0; i < n_mats; i++) {
        dst[i] = src[i];
        const bool pack = packable(e, src[i]);
        if (!pack && !copy_all) continue;
        ar_tensor *t = &e->own_tensors[i];
        *t = *src[i];
        t->n_bytes = owned_bytes(e, src[i], copy_all);
        if (pack) {
            t->type = AR_TYPE_L16;
            e->n_lanes++;
        }
        t->data = p;
        t->file = -1;
        t->file_offset = 0;
        /* A tied output packed into lanes leaves the embedding lookups on the model's bytes:
         * their pages are given back too, and the rows looked up come back from the file. */
        copy_matrix(e, src[i], p, pack);
        p += (t->n_bytes + 63) & ~(uint64_t)63;
        dst[i] = t;
    }
    (void)mprotect(e->own_data, e->own_len, PROT_READ);
    for (int l = 0; l < hp->n_layers; l++) {
        ar_qwen2_layer *w = &e->own_layers[l];
        *w = mw->layers[l];
        w->wq = dst[7 * l];
        w->wk = dst[7 * l + 1];
        w->wv = dst[7 * l + 2];
        w->wo = dst[7 * l + 3];
        w->w_gate = dst[7 * l + 4];
        w->w_up = dst[7 * l + 5];
        w->w_down = dst[7 * l + 6];
    }
    e->own_w = *mw;
    e->own_w.layers = e->own_layers;
    e->own_w.output = dst[n_mats - 1];
    if (mw->output == mw->tok_embd && e->own_w.output->type == mw->tok_embd->type)
        e->own_w.tok_embd = e->own_w.output;
    e->w = &e->own_w;
    free(src);
    free(dst);
    return AR_OK;
}

void ar_engine_free_own_weights(ar_engine *e) {
    if (e->own_data) munmap(e->own_data, e->own_len);
    free(e->own_tensors);
    free(e->own_layers);
}
