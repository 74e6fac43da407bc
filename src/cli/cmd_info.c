/*
 * cmd_info.c - `archrouter info MODEL`: what a model file holds.
 *
 * Opens the model through the public API (which validates every tensor the forward pass
 * needs), then prints the architecture, hyper-parameters, parameter count, tensor type
 * histogram, bits per weight, tokenizer facts and the load time, as text or as one JSON
 * object (--json). --tensors and --meta add the tensor list and the metadata.
 */
#include "cli.h"

#include "archrouter.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f) {
    fputs("Usage: archrouter info [--json] [--tensors] [--meta] MODEL\n\n"
          "Describe a model: a GGUF file, a Hugging Face checkpoint directory, or a\n"
          ".safetensors file next to its config.json. The model is fully validated.\n\n"
          "Options:\n"
          "  --json      print one JSON object (keys: architecture, name, format,\n"
          "              file_type, n_params, n_layers, n_heads, n_kv_heads, head_dim,\n"
          "              n_embd, n_ff, n_vocab, n_ctx_train, rope_theta, rms_eps,\n"
          "              tied_embeddings, tensor_types, bits_per_weight, tokenizer,\n"
          "              has_chat_template, load_ms, ...)\n"
          "  --tensors   also list every tensor: name, type, shape, bytes, offset\n"
          "  --meta      also list the metadata (GGUF key/values or config.json fields)\n"
          "  -h, --help  show this help\n\n"
          "A GGUF file without tensors (vocabulary only) is described too.\n",
          f);
    return f == stdout ? ar_cli_finish_output(AR_EXIT_OK) : AR_EXIT_USAGE;
}

typedef struct type_count {
    int count[64]; /* by ar_type id (all < 64) */
    uint64_t bytes[64];
} type_count;

static void count_types(const ar_model *m, type_count *tc) {
    memset(tc, 0, sizeof *tc);
    for (int32_t i = 0; i < ar_model_n_tensors(m); i++) {
        ar_tensor_info ti;
        if (ar_model_tensor_info(m, i, &ti) != AR_OK || (unsigned)ti.type >= 64) continue;
        tc->count[ti.type]++;
        tc->bytes[ti.type] += ti.n_bytes;
    }
}

static double bits_per_weight(const ar_model_info *in) {
    return in->n_params ? 8.0 * (double)in->n_weight_bytes / (double)in->n_params : 0.0;
}

static void shape_str(const ar_tensor_info *ti, char *buf, size_t size) {
    size_t len = 0;
    for (int d = 0; d < ti->n_dims && len < size; d++)
        len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64, d ? " x " : "", ti->ne[d]);
}

/* ---- JSON ------------------------------------------------------------------------------ */

/* A float field as the shortest decimal that reads back to the same float (1e-06, not
 * 9.9999999747524271e-07). */
static json_t *float_json(float f) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

static json_t *special_json(const ar_model *m, int32_t id) {
    const char *text = id >= 0 ? ar_model_token_text(m, id) : NULL;
    return text ? json_string(text) : json_null();
}

static json_t *info_json(const ar_model *m, const ar_model_info *in, bool tensors, bool meta) {
    json_t *o = json_object();
    json_object_set_new(o, "architecture", json_string(in->architecture));
    json_object_set_new(o, "name", json_string(in->name));
    json_object_set_new(o, "format", json_string(in->format));
    json_object_set_new(o, "format_version", json_integer(in->format_version));
    json_object_set_new(o, "file_type", json_string(in->file_type));
    json_object_set_new(o, "vocab_only", json_boolean(in->vocab_only));
    json_object_set_new(o, "n_params", json_integer((json_int_t)in->n_params));
    json_object_set_new(o, "n_weight_bytes", json_integer((json_int_t)in->n_weight_bytes));
    json_object_set_new(o, "bits_per_weight", json_real(bits_per_weight(in)));
    json_object_set_new(o, "n_layers", json_integer(in->n_layers));
    json_object_set_new(o, "n_heads", json_integer(in->n_heads));
    json_object_set_new(o, "n_kv_heads", json_integer(in->n_kv_heads));
    json_object_set_new(o, "head_dim", json_integer(in->head_dim));
    json_object_set_new(o, "n_embd", json_integer(in->n_embd));
    json_object_set_new(o, "n_ff", json_integer(in->n_ff));
    json_object_set_new(o, "n_vocab", json_integer(in->n_vocab));
    json_object_set_new(o, "n_ctx_train", json_integer(in->n_ctx_train));
    json_object_set_new(o, "rope_theta", float_json(in->rope_theta));
    json_object_set_new(o, "rms_eps", float_json(in->rms_eps));
    json_object_set_new(o, "tied_embeddings", json_boolean(in->tied_embeddings));
    json_object_set_new(o, "n_tensors", json_integer(in->n_tensors));
    json_object_set_new(o, "n_files", json_integer(in->n_files));
    json_object_set_new(o, "file_bytes", json_integer((json_int_t)in->file_bytes));

    type_count tc;
    count_types(m, &tc);
    json_t *types = json_object(), *type_bytes = json_object();
    for (int t = 0; t < 64; t++) {
        if (!tc.count[t]) continue;
        json_object_set_new(types, ar_type_name((ar_type)t), json_integer(tc.count[t]));
        json_object_set_new(type_bytes, ar_type_name((ar_type)t),
                            json_integer((json_int_t)tc.bytes[t]));
    }
    json_object_set_new(o, "tensor_types", types);
    json_object_set_new(o, "tensor_type_bytes", type_bytes);

    json_t *tok = json_object();
    json_object_set_new(tok, "model", json_string(in->tokenizer_model));
    json_object_set_new(tok, "pre", json_string(in->tokenizer_pre));
    json_object_set_new(tok, "n_tokens", json_integer(in->n_tokens));
    json_object_set_new(tok, "bos_id", json_integer(in->bos_id));
    json_object_set_new(tok, "eos_id", json_integer(in->eos_id));
    json_object_set_new(tok, "pad_id", json_integer(in->pad_id));
    json_object_set_new(tok, "bos", special_json(m, in->bos_id));
    json_object_set_new(tok, "eos", special_json(m, in->eos_id));
    json_object_set_new(tok, "pad", special_json(m, in->pad_id));
    json_object_set_new(o, "tokenizer", tok);
    json_object_set_new(o, "has_chat_template", json_boolean(in->has_chat_template));
    json_object_set_new(o, "load_ms", json_real(in->load_ms));

    if (tensors) {
        json_t *arr = json_array();
        for (int32_t i = 0; i < ar_model_n_tensors(m); i++) {
            ar_tensor_info ti;
            if (ar_model_tensor_info(m, i, &ti) != AR_OK) continue;
            json_t *t = json_object(), *ne = json_array();
            for (int d = 0; d < ti.n_dims; d++) json_array_append_new(ne, json_integer(ti.ne[d]));
            json_object_set_new(t, "name", json_string(ti.name));
            json_object_set_new(t, "type", json_string(ar_type_name(ti.type)));
            json_object_set_new(t, "ne", ne);
            json_object_set_new(t, "n_bytes", json_integer((json_int_t)ti.n_bytes));
            json_object_set_new(t, "offset", json_integer((json_int_t)ti.file_offset));
            json_array_append_new(arr, t);
        }
        json_object_set_new(o, "tensors", arr);
    }
    if (meta) {
        json_t *mo = json_object();
        char buf[1024];
        for (int32_t i = 0; i < ar_model_meta_count(m); i++) {
            if (ar_model_meta_value_text(m, i, buf, sizeof buf) < 0) continue;
            /* Values are shown as text; invalid UTF-8 in a value would make jansson refuse
             * the string, so fall back to a marker. */
            json_t *s = json_string(buf);
            json_object_set_new(mo, ar_model_meta_key(m, i), s ? s : json_string("(binary)"));
        }
        json_object_set_new(o, "metadata", mo);
    }
    return o;
}

/* ---- text ------------------------------------------------------------------------------ */

static void print_special(const ar_model *m, const char *label, int32_t id) {
    if (id < 0) return;
    const char *text = ar_model_token_text(m, id);
    printf(", %s %" PRId32, label, id);
    if (text) printf(" '%s'", text);
}

static void print_text(const ar_model *m, const ar_model_info *in, const char *path, bool tensors,
                       bool meta) {
    printf("model          %s\n", path);
    if (strcmp(in->format, "gguf") == 0)
        printf("format         GGUF v%" PRIu32 ", %.1f MB\n", in->format_version,
               (double)in->file_bytes / 1e6);
    else
        printf("format         safetensors, %" PRId32 " file%s, %.1f MB\n", in->n_files,
               in->n_files == 1 ? "" : "s", (double)in->file_bytes / 1e6);
    if (*in->name) printf("name           %s\n", in->name);
    printf("architecture   %s\n", in->architecture);
    if (in->vocab_only) {
        printf("weights        none (vocabulary-only file)\n");
    } else {
        printf("file type      %s, %.2f bits per weight\n", *in->file_type ? in->file_type : "?",
               bits_per_weight(in));
        double n = (double)in->n_params;
        printf("parameters     %.3f %s (%" PRIu64 "), %.1f MB of weights\n",
               n >= 1e9 ? n / 1e9 : n / 1e6, n >= 1e9 ? "B" : "M", in->n_params,
               (double)in->n_weight_bytes / 1e6);
    }
    printf("layers         %" PRId32 ", embedding %" PRId32 ", feed-forward %" PRId32 "\n",
           in->n_layers, in->n_embd, in->n_ff);
    printf("attention      %" PRId32 " heads, %" PRId32 " key/value heads, head dim %" PRId32 "\n",
           in->n_heads, in->n_kv_heads, in->head_dim);
    printf("vocabulary     %" PRId32 "\n", in->n_vocab);
    if (in->n_ctx_train > 0) printf("context        %" PRId32 " (training)\n", in->n_ctx_train);
    printf("rope theta     %g, rms eps %g\n", (double)in->rope_theta, (double)in->rms_eps);
    if (!in->vocab_only)
        printf("embeddings     %s\n",
               in->tied_embeddings ? "tied (lm_head = token embedding)" : "separate lm_head");
    type_count tc;
    count_types(m, &tc);
    printf("tensors        %" PRId32, in->n_tensors);
    const char *sep = ": ";
    for (int t = 0; t < 64; t++) {
        if (!tc.count[t]) continue;
        printf("%s%s %d (%.1f MB)", sep, ar_type_name((ar_type)t), tc.count[t],
               (double)tc.bytes[t] / 1e6);
        sep = ", ";
    }
    printf("\n");
    if (*in->tokenizer_model || in->n_tokens >= 0) {
        printf("tokenizer      %s%s%s, %" PRId32 " tokens", in->tokenizer_model,
               *in->tokenizer_pre ? " / " : "", in->tokenizer_pre, in->n_tokens);
        print_special(m, "bos", in->bos_id);
        print_special(m, "eos", in->eos_id);
        print_special(m, "pad", in->pad_id);
        printf("\n");
    } else if (in->bos_id >= 0 || in->eos_id >= 0) {
        printf("special ids    bos %" PRId32 ", eos %" PRId32 " (from config.json)\n", in->bos_id,
               in->eos_id);
    }
    printf("chat template  %s\n", in->has_chat_template ? "present" : "none");
    printf("load time      %.2f ms\n", in->load_ms);
    if (tensors) {
        printf("\n%-48s %-6s %-16s %12s %12s\n", "tensor", "type", "shape", "bytes", "offset");
        for (int32_t i = 0; i < ar_model_n_tensors(m); i++) {
            ar_tensor_info ti;
            char shape[96] = "";
            if (ar_model_tensor_info(m, i, &ti) != AR_OK) continue;
            shape_str(&ti, shape, sizeof shape);
            printf("%-48s %-6s %-16s %12" PRIu64 " %12" PRIu64 "\n", ti.name, ar_type_name(ti.type),
                   shape, ti.n_bytes, ti.file_offset);
        }
    }
    if (meta) {
        printf("\n");
        char buf[1024];
        for (int32_t i = 0; i < ar_model_meta_count(m); i++)
            if (ar_model_meta_value_text(m, i, buf, sizeof buf) >= 0)
                printf("%-40s %s\n", ar_model_meta_key(m, i), buf);
    }
}

int ar_cmd_info(int argc, char **argv) {
    bool json = false, tensors = false, meta = false, no_more_opts = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!no_more_opts && a[0] == '-' && a[1]) {
            if (ar_cli_is_help(a))
                return usage(stdout);
            else if (strcmp(a, "--json") == 0)
                json = true;
            else if (strcmp(a, "--tensors") == 0)
                tensors = true;
            else if (strcmp(a, "--meta") == 0)
                meta = true;
            else if (strcmp(a, "--") == 0)
                no_more_opts = true;
            else
                return ar_cli_usage_error("info", "unknown option '%s'", a);
        } else if (!path) {
            path = a;
        } else {
            return ar_cli_usage_error("info", "more than one model given ('%s', '%s')", path, a);
        }
    }
    if (!path) return ar_cli_usage_error("info", "no model given");

    ar_model_params mp = ar_model_default_params();
    mp.allow_vocab_only = true;
    ar_model *m = NULL;
    ar_status st = ar_model_open(path, &mp, &m);
    if (st != AR_OK) {
        int rc = ar_cli_fail("%s (%s)", ar_model_errmsg(m), ar_strerror(st));
        ar_model_free(m);
        return rc;
    }
    ar_model_info in;
    ar_model_get_info(m, &in);
    int rc = AR_EXIT_OK;
    if (json) {
        json_t *o = info_json(m, &in, tensors, meta);
        char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))
                    : NULL;
        if (s)
            printf("%s\n", s);
        else
            rc = ar_cli_fail("out of memory formatting JSON");
        free(s);
        json_decref(o);
    } else {
        print_text(m, &in, path, tensors, meta);
    }
    ar_model_free(m);
    return ar_cli_finish_output(rc);
}
