/*
 * test_model.c - ar_model_open() / ar_model_open_memory() and the model API on tiny Qwen2
 * models built by tests/common/model_writer.h, in both formats.
 *
 * Covered: hyper-parameters from GGUF keys and from config.json (head_dim from key_length /
 * head_dim or n_embd / n_heads, KV heads defaulting to the head count), tied and untied
 * embeddings, n_params (tied counted once) and weight bytes, vocabulary-only files,
 * unsupported architectures, missing and misshapen tensors named in the message (with the
 * expected shape), vector types, the semantics of a handle from a failed open, tensor
 * lookup / info / dequantization (exact values for F32, F16, BF16; every quantized type
 * read from the right bytes), metadata, vocabulary and file-type reporting.
 */
#include "testutil.h"

#include "archrouter.h"
#include "kernels/types.h"
#include "model/model.h"
#include "model_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers -------------------------------------------------------------------------- */

/* A model opened from an in-memory image that stays alive with it. */
typedef struct opened {
    mw_buf file;
    mw_gguf_layout layout; /* GGUF only */
    char *config;          /* safetensors only */
    ar_model *m;
    ar_model_info info;
} opened;

static ar_status open_gguf(opened *o, const mw_qwen2 *spec, const ar_model_params *params) {
    memset(o, 0, sizeof *o);
    mw_qwen2_gguf(spec, &o->file, &o->layout);
    ar_status st = ar_model_open_memory(o->file.data, o->file.len, NULL, params, &o->m);
    if (st == AR_OK) assert_int_equal(ar_model_get_info(o->m, &o->info), AR_OK);
    return st;
}

static ar_status open_st(opened *o, const mw_qwen2 *spec, const ar_model_params *params) {
    memset(o, 0, sizeof *o);
    mw_qwen2_st(spec, &o->file, &o->config);
    ar_status st = ar_model_open_memory(o->file.data, o->file.len, o->config, params, &o->m);
    if (st == AR_OK) assert_int_equal(ar_model_get_info(o->m, &o->info), AR_OK);
    return st;
}

static void must(ar_status st, const opened *o) {
    if (st != AR_OK) fail_msg("open: %s: %s", ar_strerror(st), ar_model_errmsg(o->m));
}

static void expect_err(ar_status st, const opened *o, ar_status want, const char *substr) {
    const char *msg = ar_model_errmsg(o->m);
    if (st != want || !strstr(msg, substr))
        fail_msg("expected %s with \"%s\", got %s: \"%s\"", ar_strerror(want), substr,
                 ar_strerror(st), msg);
}

static void close_model(opened *o) {
    ar_model_free(o->m);
    mw_free(&o->file);
    free(o->config);
    memset(o, 0, sizeof *o);
}

/* The shared expectations on hyper-parameters of a spec. */
static void check_hparams(const ar_model_info *in, const mw_qwen2 *s) {
    assert_string_equal(in->architecture, "qwen2");
    assert_int_equal(in->n_layers, s->n_layers);
    assert_int_equal(in->n_heads, s->n_heads);
    assert_int_equal(in->n_kv_heads, s->n_kv_heads);
    assert_int_equal(in->head_dim, s->head_dim > 0 ? s->head_dim : s->n_embd / s->n_heads);
    assert_int_equal(in->n_embd, s->n_embd);
    assert_int_equal(in->n_ff, s->n_ff);
    assert_int_equal(in->n_vocab, s->n_vocab);
    assert_int_equal(in->n_ctx_train, 32768);
    assert_true(in->rope_theta == 1e6f);
    assert_true(in->rms_eps == 1e-6f);
    assert_int_equal(in->tied_embeddings, s->tied);
    assert_int_equal(in->n_params, mw_qwen2_n_params(s));
    assert_false(in->vocab_only);
    assert_int_equal(in->n_files, 1);
    assert_true(in->load_ms >= 0);
}

/* ---- hyper-parameters ----------------------------------------------------------------- */

static void test_gguf_info(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.name = "tiny";
    s.n_tokens = 40;
    s.bos_id = 1;
    s.eos_id = 2;
    s.pad_id = 3;
    s.chat_template = "{{ x }}";
    opened o;
    must(open_gguf(&o, &s, NULL), &o);
    const ar_model_info *in = &o.info;
    check_hparams(in, &s);
    assert_string_equal(in->name, "tiny");
    assert_string_equal(in->format, "gguf");
    assert_string_equal(in->file_type, "F32"); /* no general.file_type: from the matrices */
    assert_int_equal(in->format_version, 3);
    assert_int_equal(in->n_weight_bytes, 4 * mw_qwen2_n_params(&s));
    assert_int_equal(in->n_tensors, 1 + 12 * 2 + 2);
    assert_int_equal(in->file_bytes, o.file.len);
    assert_string_equal(in->tokenizer_model, "gpt2");
    assert_string_equal(in->tokenizer_pre, "");
    assert_int_equal(in->n_tokens, 40);
    assert_int_equal(in->bos_id, 1);
    assert_int_equal(in->eos_id, 2);
    assert_int_equal(in->pad_id, 3);
    assert_true(in->has_chat_template);
    assert_string_equal(ar_model_errmsg(o.m), "");
    close_model(&o);
}

static void test_gguf_minimal_info(void **state) {
    (void)state;
    /* No name, no vocabulary, no special ids, no template: the documented "absent" values. */
    mw_qwen2 s = mw_qwen2_default();
    s.version = 2;
    opened o;
    must(open_gguf(&o, &s, NULL), &o);
    assert_string_equal(o.info.name, "");
    assert_int_equal(o.info.format_version, 2);
    assert_string_equal(o.info.tokenizer_model, "");
    assert_int_equal(o.info.n_tokens, -1);
    assert_int_equal(o.info.bos_id, -1);
    assert_int_equal(o.info.eos_id, -1);
    assert_int_equal(o.info.pad_id, -1);
    assert_false(o.info.has_chat_template);
    assert_null(ar_model_token_text(o.m, 0));
    close_model(&o);
}

static void test_gguf_head_dim_from_key_length(void **state) {
    (void)state;
    /* key_length 16 with n_embd 32 and 4 heads: q is [32, 64], not [32, 32]. */
    mw_qwen2 s = mw_qwen2_default();
    s.head_dim = 16;
    opened o;
    must(open_gguf(&o, &s, NULL), &o);
    check_hparams(&o.info, &s);
    assert_int_equal(o.info.head_dim, 16);
    ar_tensor_info ti;
    assert_int_equal(
        ar_model_tensor_info(o.m, ar_model_tensor_find(o.m, "blk.0.attn_q.weight"), &ti), AR_OK);
    assert_int_equal(ti.ne[1], 64);
    close_model(&o);
}

static void test_gguf_kv_heads_default(void **state) {
    (void)state;
    /* Without head_count_kv the model has as many KV heads as heads. */
    mw_qwen2 s = mw_qwen2_default();
    s.omit_kv_heads = true;
    s.n_kv_heads = s.n_heads;
    opened o;
    must(open_gguf(&o, &s, NULL), &o);
    assert_int_equal(o.info.n_kv_heads, 4);
    close_model(&o);
    /* ... so weights made for 2 KV heads no longer fit. */
    s.n_kv_heads = 2;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL,
               "tensor 'blk.0.attn_k.weight' has shape [32, 16], expected [32, 32]");
    close_model(&o);
}

static void test_config_hparams(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.matrix_type = AR_TYPE_F16;
    opened o;
    must(open_st(&o, &s, NULL), &o);
    check_hparams(&o.info, &s);
    assert_string_equal(o.info.format, "safetensors");
    assert_int_equal(o.info.format_version, 0);
    assert_string_equal(o.info.name, "memory");
    assert_string_equal(o.info.file_type, "F16");
    assert_int_equal(o.info.n_tokens, -1);
    assert_string_equal(o.info.tokenizer_model, "");
    assert_int_equal(o.info.bos_id, s.n_vocab - 1); /* from config.json */
    assert_int_equal(o.info.eos_id, s.n_vocab - 2);
    assert_int_equal(o.info.pad_id, -1);
    assert_int_equal(o.info.file_bytes, o.file.len);
    close_model(&o);
}

static void test_config_head_dim_and_kv_default(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.head_dim = 16; /* config.json "head_dim" */
    opened o;
    must(open_st(&o, &s, NULL), &o);
    assert_int_equal(o.info.head_dim, 16);
    close_model(&o);
    s = mw_qwen2_default();
    s.omit_kv_heads = true;
    s.n_kv_heads = s.n_heads;
    must(open_st(&o, &s, NULL), &o);
    assert_int_equal(o.info.n_kv_heads, s.n_heads);
    close_model(&o);
    /* The defaults of absent optional fields. */
    s = mw_qwen2_default();
    s.config_merge = "{\"rope_theta\": null, \"rms_norm_eps\": null, "
                     "\"max_position_embeddings\": null, \"rope_scaling\": null}";
    must(open_st(&o, &s, NULL), &o);
    assert_true(o.info.rope_theta == 10000.0f);
    assert_true(o.info.rms_eps == 1e-6f);
    assert_int_equal(o.info.n_ctx_train, -1);
    close_model(&o);
}

static void test_config_tie_default_false(void **state) {
    (void)state;
    /* Qwen2Config's tie_word_embeddings defaults to false: without it, lm_head is needed. */
    mw_qwen2 s = mw_qwen2_default();
    s.tied = true;
    s.config_omit = "tie_word_embeddings";
    opened o;
    expect_err(open_st(&o, &s, NULL), &o, AR_ERR_MODEL, "missing tensor 'lm_head.weight'");
    close_model(&o);
}

/* ---- tied embeddings and counts ------------------------------------------------------- */

static void test_tied_and_untied(void **state) {
    (void)state;
    for (int tied = 0; tied <= 1; tied++) {
        mw_qwen2 s = mw_qwen2_default();
        s.tied = tied;
        opened g, h;
        must(open_gguf(&g, &s, NULL), &g);
        must(open_st(&h, &s, NULL), &h);
        assert_int_equal(g.info.tied_embeddings, tied);
        assert_int_equal(h.info.tied_embeddings, tied);
        assert_int_equal(g.info.n_params, mw_qwen2_n_params(&s));
        assert_int_equal(h.info.n_params, g.info.n_params);
        assert_int_equal(g.info.n_tensors, tied ? 26 : 27);
        assert_int_equal(h.info.n_tensors, g.info.n_tensors);
        assert_int_equal(ar_model_tensor_find(g.m, "output.weight") >= 0, !tied);
        assert_int_equal(ar_model_tensor_find(h.m, "lm_head.weight") >= 0, !tied);
        /* Tied: the output matrix is the embedding itself. */
        if (tied)
            assert_ptr_equal(g.m->w.output, g.m->w.tok_embd);
        else
            assert_ptr_not_equal(g.m->w.output, g.m->w.tok_embd);
        close_model(&g);
        close_model(&h);
    }
    /* The difference is exactly one embedding matrix. */
    mw_qwen2 a = mw_qwen2_default(), b = mw_qwen2_default();
    b.tied = true;
    assert_int_equal(mw_qwen2_n_params(&a) - mw_qwen2_n_params(&b), 32 * 48);
}

static void test_tied_config_with_lm_head_in_file(void **state) {
    (void)state;
    /* config.json says tied but the file also has lm_head: it is not used or counted. */
    mw_qwen2 s = mw_qwen2_default();
    s.config_merge = "{\"tie_word_embeddings\": true}";
    opened o;
    must(open_st(&o, &s, NULL), &o);
    mw_qwen2 tied = mw_qwen2_default();
    tied.tied = true;
    assert_true(o.info.tied_embeddings);
    assert_int_equal(o.info.n_params, mw_qwen2_n_params(&tied));
    assert_int_equal(o.info.n_tensors, 27);
    close_model(&o);
}

static void test_n_params_and_bytes(void **state) {
    (void)state;
    static const struct {
        int layers;
        bool tied;
        uint32_t mat;
    } cases[] = {{1, false, AR_TYPE_F16}, {3, true, AR_TYPE_BF16}, {2, false, AR_TYPE_F32}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw_qwen2 s = mw_qwen2_default();
        s.n_layers = cases[i].layers;
        s.tied = cases[i].tied;
        s.matrix_type = cases[i].mat;
        /* Hand count: E=32, H=32, K=16, F=64, V=48. */
        uint64_t per_layer = 32 + 32 * 32 + 32 + 2 * (32 * 16 + 16) + 32 * 32 + 32 + 3 * 32 * 64;
        uint64_t vectors = (uint64_t)s.n_layers * (32 + 32 + 16 + 16 + 32) + 32;
        uint64_t want = 32 * 48 * (s.tied ? 1 : 2) + (uint64_t)s.n_layers * per_layer + 32;
        assert_int_equal(mw_qwen2_n_params(&s), want);
        uint64_t msize = s.matrix_type == AR_TYPE_F32 ? 4 : 2;
        opened g, h;
        must(open_gguf(&g, &s, NULL), &g);
        must(open_st(&h, &s, NULL), &h);
        assert_int_equal(g.info.n_params, want);
        assert_int_equal(h.info.n_params, want);
        assert_int_equal(g.info.n_weight_bytes, (want - vectors) * msize + vectors * 4);
        assert_int_equal(h.info.n_weight_bytes, g.info.n_weight_bytes);
        close_model(&g);
        close_model(&h);
    }
}

/* ---- vocabulary-only files ------------------------------------------------------------ */

static void test_vocab_only(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.no_tensors = true;
    s.n_tokens = 48;
    s.bos_id = 7;
    opened o;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL,
               "the file has no tensors (a vocabulary-only GGUF?): it cannot be run");
    close_model(&o);
    ar_model_params p = ar_model_default_params();
    p.allow_vocab_only = true;
    must(open_gguf(&o, &s, &p), &o);
    assert_true(o.info.vocab_only);
    assert_int_equal(o.info.n_tensors, 0);
    assert_int_equal(o.info.n_params, 0);
    assert_int_equal(o.info.n_weight_bytes, 0);
    assert_int_equal(o.info.n_vocab, 48);
    assert_int_equal(o.info.n_tokens, 48);
    assert_int_equal(o.info.n_layers, 2);
    assert_int_equal(o.info.bos_id, 7);
    assert_string_equal(o.info.file_type, "");
    assert_string_equal(ar_model_token_text(o.m, 7), "<t7>");
    assert_int_equal(ar_model_tensor_find(o.m, "token_embd.weight"), -1);
    assert_int_equal(ar_model_n_tensors(o.m), 0);
    close_model(&o);
    /* Neither tensors nor a vocabulary: nothing to use, even with allow_vocab_only. */
    s.n_tokens = 0;
    s.bos_id = -1;
    expect_err(open_gguf(&o, &s, &p), &o, AR_ERR_MODEL,
               "the file has neither tensors nor a vocabulary");
    close_model(&o);
}

static void test_allow_vocab_only_still_checks_tensors(void **state) {
    (void)state;
    /* A file that has tensors is checked completely even with allow_vocab_only. */
    mw_qwen2 s = mw_qwen2_default();
    s.omit_tensor = "blk.0.ffn_up.weight";
    ar_model_params p = ar_model_default_params();
    p.allow_vocab_only = true;
    opened o;
    expect_err(open_gguf(&o, &s, &p), &o, AR_ERR_MODEL, "missing tensor 'blk.0.ffn_up.weight'");
    close_model(&o);
    s = mw_qwen2_default();
    must(open_gguf(&o, &s, &p), &o);
    assert_false(o.info.vocab_only);
    close_model(&o);
}

/* ---- refusals ------------------------------------------------------------------------- */

static void test_unsupported_architecture(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.arch = "llama";
    opened o;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_UNSUPPORTED, "unsupported architecture 'llama'");
    close_model(&o);
    expect_err(open_st(&o, &s, NULL), &o, AR_ERR_UNSUPPORTED, "unsupported architecture 'llama'");
    close_model(&o);
    s.arch = "qwen3";
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_UNSUPPORTED, "architecture 'qwen3'");
    close_model(&o);
}

static void test_missing_tensor_named(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.omit_tensor = "blk.1.attn_output.weight";
    opened o;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL,
               "missing tensor 'blk.1.attn_output.weight'");
    close_model(&o);
    s.omit_tensor = "model.layers.1.self_attn.o_proj.weight";
    expect_err(open_st(&o, &s, NULL), &o, AR_ERR_MODEL,
               "missing tensor 'model.layers.1.self_attn.o_proj.weight'");
    close_model(&o);
    s.omit_tensor = "output_norm.weight";
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL, "missing tensor 'output_norm.weight'");
    close_model(&o);
}

static void test_wrong_shape_named(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.mod_tensor = "blk.1.ffn_down.weight";
    s.mod_n_dims = 2;
    s.mod_ne[0] = 32; /* swapped: [E, F] instead of [F, E] */
    s.mod_ne[1] = 64;
    opened o;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL,
               "tensor 'blk.1.ffn_down.weight' has shape [32, 64], expected [64, 32]");
    close_model(&o);
    /* Hugging Face names its shapes outermost first. */
    s.mod_tensor = "model.layers.1.mlp.down_proj.weight";
    expect_err(open_st(&o, &s, NULL), &o, AR_ERR_MODEL,
               "tensor 'model.layers.1.mlp.down_proj.weight' has shape [64, 32], expected "
               "[32, 64]");
    close_model(&o);
    /* A bias of the wrong length. */
    s.mod_tensor = "blk.0.attn_q.bias";
    s.mod_n_dims = 1;
    s.mod_ne[0] = 31;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL,
               "tensor 'blk.0.attn_q.bias' has shape [31], expected [32]");
    close_model(&o);
    /* A 3-D embedding. */
    s.mod_tensor = "token_embd.weight";
    s.mod_n_dims = 3;
    s.mod_ne[0] = 32;
    s.mod_ne[1] = 48;
    s.mod_ne[2] = 1;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL,
               "tensor 'token_embd.weight' must be a "
               "matrix [n_embd, n_vocab]");
    close_model(&o);
}

static void test_vector_types(void **state) {
    (void)state;
    /* Norms and biases may be F32, F16 or BF16 ... */
    static const uint32_t ok[] = {AR_TYPE_F32, AR_TYPE_F16, AR_TYPE_BF16};
    for (size_t i = 0; i < 3; i++) {
        mw_qwen2 s = mw_qwen2_default();
        s.vector_type = ok[i];
        opened o;
        must(open_gguf(&o, &s, NULL), &o);
        close_model(&o);
        must(open_st(&o, &s, NULL), &o);
        close_model(&o);
    }
    /* ... but not quantized. */
    mw_qwen2 s = mw_qwen2_default();
    s.mod_tensor = "output_norm.weight";
    s.mod_type = AR_TYPE_Q4_0;
    opened o;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL,
               "tensor 'output_norm.weight' has type Q4_0; norms and biases must be F32, F16 or "
               "BF16");
    close_model(&o);
    s.mod_tensor = "blk.0.attn_v.bias"; /* 16 elements: not even a Q4_0 block */
    s.mod_type = AR_TYPE_Q8_0;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_FORMAT,
               "tensor 'blk.0.attn_v.bias': row of 16 elements is not a whole number of Q8_0");
    close_model(&o);
}

static void test_heads_not_multiple_of_kv_heads(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.n_embd = 48;
    s.n_heads = 6;
    s.n_kv_heads = 4;
    opened o;
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL,
               "GGUF: 6 attention heads is not a multiple of 4 key/value heads");
    close_model(&o);
    expect_err(open_st(&o, &s, NULL), &o, AR_ERR_MODEL,
               "config.json: 6 attention heads is not a multiple of 4 key/value heads");
    close_model(&o);
    s.n_kv_heads = 12; /* more KV heads than heads */
    expect_err(open_gguf(&o, &s, NULL), &o, AR_ERR_MODEL, "not a multiple of 12 key/value heads");
    close_model(&o);
    s.n_kv_heads = 6; /* MHA, and 3 and 1 (GQA) are fine */
    must(open_gguf(&o, &s, NULL), &o);
    close_model(&o);
    s.n_kv_heads = 1;
    must(open_st(&o, &s, NULL), &o);
    assert_int_equal(o.info.n_kv_heads, 1);
    close_model(&o);
}

/* ---- failed handles and arguments ----------------------------------------------------- */

static void test_failed_handle(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.omit_tensor = "token_embd.weight";
    opened o;
    ar_status st = open_gguf(&o, &s, NULL);
    assert_int_equal(st, AR_ERR_MODEL);
    ar_model *m = o.m;
    assert_non_null(m);
    assert_true(strlen(ar_model_errmsg(m)) > 0);
    ar_model_info info;
    memset(&info, 0x5a, sizeof info);
    assert_int_equal(ar_model_get_info(m, &info), AR_ERR_INVALID_ARG);
    assert_int_equal(((unsigned char *)&info)[0], 0x5a); /* unchanged on error */
    assert_int_equal(ar_model_n_tensors(m), 0);
    ar_tensor_info ti;
    assert_int_equal(ar_model_tensor_info(m, 0, &ti), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_tensor_find(m, "blk.0.attn_q.weight"), -1);
    float x[4];
    assert_int_equal(ar_model_tensor_to_f32(m, 0, x, 4), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_meta_count(m), 0);
    assert_null(ar_model_meta_key(m, 0));
    char buf[16];
    assert_int_equal(ar_model_meta_value_text(m, 0, buf, sizeof buf), -1);
    assert_null(ar_model_meta_str(m, "general.architecture"));
    assert_null(ar_model_token_text(m, 0));
    /* The message stays put across refused calls. */
    assert_non_null(strstr(ar_model_errmsg(m), "missing tensor 'token_embd.weight'"));
    close_model(&o); /* frees the failed handle */
}

static void test_null_arguments(void **state) {
    (void)state;
    ar_model *m = (ar_model *)0x1;
    assert_int_equal(ar_model_open_memory(NULL, 10, NULL, NULL, &m), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_open_memory((const uint8_t *)"GGUF", 4, NULL, NULL, NULL),
                     AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_open("x.gguf", NULL, NULL), AR_ERR_INVALID_ARG);
    m = NULL;
    assert_int_equal(ar_model_open(NULL, NULL, &m), AR_ERR_INVALID_ARG);
    assert_non_null(m);
    assert_string_equal(ar_model_errmsg(m), "no model path given");
    ar_model_free(m);
    /* NULL models everywhere. */
    assert_int_equal(ar_model_get_info(NULL, NULL), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_n_tensors(NULL), 0);
    assert_int_equal(ar_model_tensor_find(NULL, "x"), -1);
    assert_int_equal(ar_model_meta_count(NULL), 0);
    assert_null(ar_model_meta_str(NULL, "x"));
    assert_null(ar_model_token_text(NULL, 0));
    /* NULL out-parameters on a good model. */
    mw_qwen2 s = mw_qwen2_default();
    opened o;
    must(open_gguf(&o, &s, NULL), &o);
    assert_int_equal(ar_model_get_info(o.m, NULL), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_tensor_info(o.m, 0, NULL), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_tensor_find(o.m, NULL), -1);
    assert_null(ar_model_meta_str(o.m, NULL));
    close_model(&o);
}

/* ---- tensors -------------------------------------------------------------------------- */

/* Every tensor of an F32/F16/BF16 model dequantizes to exactly mw_value(). */
static void check_values(const ar_model *m) {
    for (int32_t i = 0; i < ar_model_n_tensors(m); i++) {
        ar_tensor_info ti;
        assert_int_equal(ar_model_tensor_info(m, i, &ti), AR_OK);
        float *x = malloc((size_t)ti.n_elements * sizeof *x);
        assert_non_null(x);
        assert_int_equal(ar_model_tensor_to_f32(m, i, x, ti.n_elements), AR_OK);
        for (uint64_t k = 0; k < ti.n_elements; k++)
            if (x[k] != mw_value(ti.name, k))
                fail_msg("%s[%llu] = %g, expected %g", ti.name, (unsigned long long)k, (double)x[k],
                         (double)mw_value(ti.name, k));
        free(x);
    }
}

static void test_tensor_to_f32_exact(void **state) {
    (void)state;
    static const uint32_t types[] = {AR_TYPE_F32, AR_TYPE_F16, AR_TYPE_BF16};
    for (size_t i = 0; i < 3; i++) {
        mw_qwen2 s = mw_qwen2_default();
        s.matrix_type = types[i];
        s.vector_type = types[2 - i];
        opened o;
        must(open_gguf(&o, &s, NULL), &o);
        check_values(o.m);
        close_model(&o);
        must(open_st(&o, &s, NULL), &o);
        check_values(o.m);
        close_model(&o);
    }
}

static void test_tensor_to_f32_arguments(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    opened o;
    must(open_gguf(&o, &s, NULL), &o);
    int32_t i = ar_model_tensor_find(o.m, "blk.0.attn_k.bias");
    assert_true(i >= 0);
    float x[17];
    x[16] = 42.0f;
    assert_int_equal(ar_model_tensor_to_f32(o.m, i, x, 15), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_tensor_to_f32(o.m, i, x, 17), AR_OK);
    assert_true(x[16] == 42.0f); /* writes exactly n_elements */
    assert_int_equal(ar_model_tensor_to_f32(o.m, i, NULL, 16), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_tensor_to_f32(o.m, -1, x, 16), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_tensor_to_f32(o.m, ar_model_n_tensors(o.m), x, 16),
                     AR_ERR_INVALID_ARG);
    ar_tensor_info ti;
    assert_int_equal(ar_model_tensor_info(o.m, -1, &ti), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_model_tensor_info(o.m, ar_model_n_tensors(o.m), &ti), AR_ERR_INVALID_ARG);
    close_model(&o);
}

static void test_quantized_types(void **state) {
    (void)state;
    static const uint32_t types[] = {AR_TYPE_Q4_0, AR_TYPE_Q4_1, AR_TYPE_Q5_0, AR_TYPE_Q5_1,
                                     AR_TYPE_Q8_0, AR_TYPE_Q2_K, AR_TYPE_Q3_K, AR_TYPE_Q4_K,
                                     AR_TYPE_Q5_K, AR_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        mw_qwen2 s = mw_qwen2_default();
        s.n_layers = 1;
        s.n_embd = 256;
        s.n_heads = 2;
        s.n_kv_heads = 1;
        s.n_ff = 256;
        s.n_vocab = 8;
        s.matrix_type = types[i];
        opened o;
        ar_status st = open_gguf(&o, &s, NULL);
        if (st != AR_OK) fail_msg("%s: %s", ar_type_name((ar_type)types[i]), ar_model_errmsg(o.m));
        assert_string_equal(o.info.file_type, ar_type_name((ar_type)types[i]));
        const ar_type_traits *tt = ar_type_traits_get(types[i]);
        assert_non_null(tt);
        for (int32_t k = 0; k < ar_model_n_tensors(o.m); k++) {
            ar_tensor_info ti;
            assert_int_equal(ar_model_tensor_info(o.m, k, &ti), AR_OK);
            const mw_gguf_tensor_pos *w = mw_layout_tensor(&o.layout, ti.name);
            assert_non_null(w);
            assert_int_equal(ti.type, w->type);
            assert_int_equal(ti.n_bytes, w->n_bytes);
            assert_int_equal(ti.file_offset, o.layout.data_start + w->offset);
            /* The API reads the tensor's own bytes: the same as the reference on them. */
            float *x = malloc((size_t)ti.n_elements * sizeof *x);
            float *y = malloc((size_t)ti.n_elements * sizeof *y);
            assert_true(x && y);
            assert_int_equal(ar_model_tensor_to_f32(o.m, k, x, ti.n_elements), AR_OK);
            tt = ar_type_traits_get(ti.type);
            tt->to_float(o.file.data + ti.file_offset, y, (int64_t)ti.n_elements);
            assert_memory_equal(x, y, (size_t)ti.n_elements * sizeof *x);
            for (uint64_t e = 0; e < ti.n_elements; e++)
                if (!isfinite(x[e]))
                    fail_msg("%s[%llu] not finite", ti.name, (unsigned long long)e);
            free(x);
            free(y);
        }
        close_model(&o);
    }
}

static void test_tensor_find_and_info(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.alignment = 64;
    opened g;
    must(open_gguf(&g, &s, NULL), &g);
    for (int i = 0; i < g.layout.n_tensors; i++) {
        const mw_gguf_tensor_pos *w = &g.layout.tensors[i];
        int32_t k = ar_model_tensor_find(g.m, w->name);
        assert_int_equal(k, i); /* indexes are in file order */
        ar_tensor_info ti;
        assert_int_equal(ar_model_tensor_info(g.m, k, &ti), AR_OK);
        assert_string_equal(ti.name, w->name);
        assert_int_equal(ti.n_dims, (int32_t)w->n_dims);
        for (int d = 0; d < 4; d++) assert_int_equal(ti.ne[d], w->ne[d]);
        assert_int_equal(ti.n_bytes, w->n_bytes);
        assert_int_equal(ti.file_offset, g.layout.data_start + w->offset);
        assert_int_equal(ti.file_offset % 64, 0);
    }
    assert_int_equal(ar_model_tensor_find(g.m, "nope"), -1);
    assert_int_equal(ar_model_tensor_find(g.m, ""), -1);
    assert_int_equal(ar_model_tensor_find(g.m, "blk.0.attn_q"), -1);
    close_model(&g);

    /* Hugging Face: the (out, in) shape comes back reversed, innermost first. */
    opened h;
    must(open_st(&h, &s, NULL), &h);
    int32_t k = ar_model_tensor_find(h.m, "model.layers.0.mlp.down_proj.weight");
    assert_true(k >= 0);
    ar_tensor_info ti;
    assert_int_equal(ar_model_tensor_info(h.m, k, &ti), AR_OK);
    assert_int_equal(ti.n_dims, 2);
    assert_int_equal(ti.ne[0], 64); /* in = n_ff */
    assert_int_equal(ti.ne[1], 32); /* out = n_embd */
    assert_int_equal(ti.ne[2], 1);
    assert_int_equal(ti.n_elements, 64 * 32);
    assert_int_equal(ti.n_bytes, 64 * 32 * 4);
    assert_int_equal(ti.type, AR_TYPE_F32);
    /* The data is where file_offset says. */
    assert_memory_equal(h.file.data + ti.file_offset, h.m->tensors[k].data, (size_t)ti.n_bytes);
    assert_int_equal(ar_model_tensor_find(h.m, "blk.0.ffn_down.weight"), -1);
    close_model(&h);
}

/* ---- metadata ------------------------------------------------------------------------- */

static void extra_meta(mw_buf *b, void *user) {
    (void)user;
    mw_gguf_key(b, "x.nul", MW_STRING);
    mw_gguf_strn(b, "ab\0cd", 5);
    mw_gguf_kv_int(b, "x.num", MW_I32, -12);
}

static void test_metadata_gguf(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.name = "meta";
    s.n_tokens = 3;
    s.extra_kv = extra_meta;
    s.n_extra_kv = 2;
    opened o;
    s.n_vocab = 48;
    must(open_gguf(&o, &s, NULL), &o);
    int32_t n = ar_model_meta_count(o.m);
    assert_int_equal(n, o.layout.n_kv + 2);
    for (int32_t i = 0; i < o.layout.n_kv; i++)
        assert_string_equal(ar_model_meta_key(o.m, i), o.layout.kv[i].key);
    assert_string_equal(ar_model_meta_key(o.m, n - 1), "x.num");
    assert_null(ar_model_meta_key(o.m, n));
    assert_null(ar_model_meta_key(o.m, -1));
    char buf[64];
    assert_int_equal(ar_model_meta_value_text(o.m, n - 1, buf, sizeof buf), 3);
    assert_string_equal(buf, "-12");
    assert_int_equal(ar_model_meta_value_text(o.m, 0, buf, sizeof buf), 7);
    assert_string_equal(buf, "\"qwen2\"");
    assert_int_equal(ar_model_meta_value_text(o.m, 0, buf, 3), 7);
    assert_string_equal(buf, "\"q");
    assert_int_equal(ar_model_meta_value_text(o.m, n, buf, sizeof buf), -1);
    /* The tokens array renders as an array. */
    for (int32_t i = 0; i < n; i++)
        if (strcmp(ar_model_meta_key(o.m, i), "tokenizer.ggml.tokens") == 0) {
            ar_model_meta_value_text(o.m, i, buf, sizeof buf);
            assert_string_equal(buf, "[string x 3] \"<t0>\" \"<t1>\" \"<t2>\"");
        }
    assert_string_equal(ar_model_meta_str(o.m, "general.architecture"), "qwen2");
    assert_string_equal(ar_model_meta_str(o.m, "general.name"), "meta");
    assert_string_equal(ar_model_meta_str(o.m, "x.nul"), "ab"); /* cut at the NUL */
    assert_null(ar_model_meta_str(o.m, "x.num"));               /* not a string */
    assert_null(ar_model_meta_str(o.m, "qwen2.block_count"));
    assert_null(ar_model_meta_str(o.m, "absent"));
    assert_string_equal(ar_model_token_text(o.m, 2), "<t2>");
    assert_null(ar_model_token_text(o.m, 3));
    assert_null(ar_model_token_text(o.m, -1));
    close_model(&o);
}

static void test_metadata_config(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    opened o;
    must(open_st(&o, &s, NULL), &o);
    int32_t n = ar_model_meta_count(o.m);
    assert_true(n >= 10);
    /* config.json's fields, in file order. */
    assert_string_equal(ar_model_meta_key(o.m, 0), "architectures");
    assert_string_equal(ar_model_meta_key(o.m, 1), "model_type");
    char buf[64];
    assert_int_equal(ar_model_meta_value_text(o.m, 0, buf, sizeof buf),
                     (int64_t)strlen("[\"Qwen2ForCausalLM\"]"));
    assert_string_equal(buf, "[\"Qwen2ForCausalLM\"]");
    for (int32_t i = 0; i < n; i++)
        if (strcmp(ar_model_meta_key(o.m, i), "hidden_size") == 0) {
            assert_int_equal(ar_model_meta_value_text(o.m, i, buf, sizeof buf), 2);
            assert_string_equal(buf, "32");
            assert_int_equal(ar_model_meta_value_text(o.m, i, buf, 2), 2);
            assert_string_equal(buf, "3");
        }
    assert_string_equal(ar_model_meta_str(o.m, "model_type"), "qwen2");
    assert_string_equal(ar_model_meta_str(o.m, "hidden_act"), "silu");
    assert_null(ar_model_meta_str(o.m, "hidden_size"));
    assert_null(ar_model_meta_str(o.m, "absent"));
    assert_null(ar_model_meta_key(o.m, n));
    assert_int_equal(ar_model_meta_value_text(o.m, n, buf, sizeof buf), -1);
    assert_null(ar_model_token_text(o.m, 0));
    close_model(&o);
}

/* ---- file type, special ids, files ---------------------------------------------------- */

static void test_file_type(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.file_type = 15; /* llama.cpp's LLAMA_FTYPE_MOSTLY_Q4_K_M */
    opened o;
    must(open_gguf(&o, &s, NULL), &o);
    assert_string_equal(o.info.file_type, "Q4_K_M");
    close_model(&o);
    s.file_type = 1024 + 7; /* "guessed" flag */
    must(open_gguf(&o, &s, NULL), &o);
    assert_string_equal(o.info.file_type, "Q8_0");
    close_model(&o);
    s.file_type = 99; /* unknown: from the matrices */
    s.matrix_type = AR_TYPE_BF16;
    must(open_gguf(&o, &s, NULL), &o);
    assert_string_equal(o.info.file_type, "BF16");
    close_model(&o);
    s.file_type = -1;
    s.mod_tensor = "blk.1.ffn_up.weight";
    s.mod_type = AR_TYPE_Q8_0;
    must(open_gguf(&o, &s, NULL), &o);
    assert_string_equal(o.info.file_type, "mixed");
    close_model(&o);
}

static void test_special_ids_without_vocabulary(void **state) {
    (void)state;
    /* Without a vocabulary the ids cannot be checked: they are kept. */
    mw_qwen2 s = mw_qwen2_default();
    s.bos_id = 151643;
    s.eos_id = 5;
    opened o;
    must(open_gguf(&o, &s, NULL), &o);
    assert_int_equal(o.info.n_tokens, -1);
    assert_int_equal(o.info.bos_id, 151643);
    assert_int_equal(o.info.eos_id, 5);
    close_model(&o);
}

static void test_open_from_disk(void **state) {
    (void)state;
    mw_qwen2 s = mw_qwen2_default();
    s.matrix_type = AR_TYPE_F16;
    mw_buf b = {0};
    mw_qwen2_gguf(&s, &b, NULL);
    const char *path = ar_test_write_temp(0, "disk.gguf", b.data, b.len);
    assert_non_null(path);
    for (int mmap = 0; mmap <= 1; mmap++) {
        ar_model_params p = ar_model_default_params();
        p.use_mmap = mmap;
        ar_model *m = NULL;
        ar_status st = ar_model_open(path, &p, &m);
        if (st != AR_OK) fail_msg("%s", ar_model_errmsg(m));
        ar_model_info in;
        assert_int_equal(ar_model_get_info(m, &in), AR_OK);
        assert_int_equal(in.file_bytes, b.len);
        assert_string_equal(in.format, "gguf");
        check_values(m);
        ar_model_free(m);
    }
    mw_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gguf_info),
        cmocka_unit_test(test_gguf_minimal_info),
        cmocka_unit_test(test_gguf_head_dim_from_key_length),
        cmocka_unit_test(test_gguf_kv_heads_default),
        cmocka_unit_test(test_config_hparams),
        cmocka_unit_test(test_config_head_dim_and_kv_default),
        cmocka_unit_test(test_config_tie_default_false),
        cmocka_unit_test(test_tied_and_untied),
        cmocka_unit_test(test_tied_config_with_lm_head_in_file),
        cmocka_unit_test(test_n_params_and_bytes),
        cmocka_unit_test(test_vocab_only),
        cmocka_unit_test(test_allow_vocab_only_still_checks_tensors),
        cmocka_unit_test(test_unsupported_architecture),
        cmocka_unit_test(test_missing_tensor_named),
        cmocka_unit_test(test_wrong_shape_named),
        cmocka_unit_test(test_vector_types),
        cmocka_unit_test(test_heads_not_multiple_of_kv_heads),
        cmocka_unit_test(test_failed_handle),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_tensor_to_f32_exact),
        cmocka_unit_test(test_tensor_to_f32_arguments),
        cmocka_unit_test(test_quantized_types),
        cmocka_unit_test(test_tensor_find_and_info),
        cmocka_unit_test(test_metadata_gguf),
        cmocka_unit_test(test_metadata_config),
        cmocka_unit_test(test_file_type),
        cmocka_unit_test(test_special_ids_without_vocabulary),
        cmocka_unit_test(test_open_from_disk),
    };
    return cmocka_run_group_tests_name("model", tests, NULL, NULL);
}
