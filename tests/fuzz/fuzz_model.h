/*
 * fuzz_model.h - what the fuzz targets share: contract checks that abort() when broken
 * (libFuzzer then saves the input as a crash), a driver that calls every public query of
 * an opened model, and the fixed config.json texts of fuzz_safetensors.
 *
 * The checks state the contracts of include/archrouter.h and src/model/{gguf,safetensors}.h
 * as the fuzzer sees them: a failed call leaves a message, an opened model's tensors lie
 * inside the file and convert, metadata renders like snprintf, and so on.
 */
#ifndef AR_FUZZ_MODEL_H
#define AR_FUZZ_MODEL_H

#include "archrouter.h"
#include "kernels/types.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Elements dequantized per input and per path (model API, direct parse), so that every
 * execution stays in the millisecond range under ASan: tensors beyond the budget are
 * described but not converted (the small seed models convert completely). */
#define FUZZ_MAX_ELEMENTS (1u << 18)

/* Metadata entries per input that also get the by-key lookups (ar_model_meta_str,
 * ar_gguf_find, the typed getters). Each lookup is linear in the number of entries, so
 * walking all 80,000 entries a 1 MiB file can hold would make the harness quadratic; the
 * other entries are still rendered. */
#define FUZZ_MAX_LOOKUPS 1024

/* Print "fuzz check failed: FILE:LINE: WHAT" and abort(). */
_Noreturn void fuzz_fail(const char *file, int line, const char *what);

#define FUZZ_CHECK(cond) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, #cond))

/* The status of a failed call is a real error (not AR_ERR_INTERNAL, not out of range) and
 * `msg` says something. */
void fuzz_check_error(ar_status st, const char *msg);

/* Dequantize n elements of type `tt` at `data` into a fresh buffer unless that would take
 * *budget below zero; returns whether it ran. Catches reads past the tensor under ASan. */
bool fuzz_to_f32(const ar_type_traits *tt, const void *data, uint64_t n, uint64_t *budget);

/* Check the result of ar_model_open_memory(data, size, ...) and, on success, drive every
 * query of the public API on it: info, tensors (info, find, to_f32), metadata (keys, text
 * into exact, small and zero-size buffers, meta_str), tokens, and for GGUF the tokenizer
 * (ar_tokenizer_from_model, fuzz_check_tokenizer). Frees the model.
 * `format` is the expected info.format ("gguf" / "safetensors"). */
void fuzz_check_model(ar_status st, ar_model *m, const char *format, size_t size);

/* Check the result of opening a tokenizer (ar_tokenizer_from_model, ar_tokenizer_open) and,
 * on success, encode a fixed set of texts (ASCII, contractions, whitespace runs, CJK,
 * emoji, combining marks, added tokens, invalid UTF-8) with each flag combination, twice
 * (the second time from the word cache, which must not change results), and decode them
 * back: the ids must be in range and decode to the text. Also the id/text queries and the
 * special ids. Frees the tokenizer. */
void fuzz_check_tokenizer(ar_status st, ar_tokenizer *tok);

/* Tokenizer parameters for fuzzing: a small word cache (64 KiB), so that building one per
 * input stays cheap and the cache code still runs. */
ar_tokenizer_params fuzz_tokenizer_params(void);

/* A small, valid Qwen2-style tokenizer.json (malloc'd, *len bytes): the 256 byte tokens,
 * a few merges and added tokens, the Qwen2 pipeline. Seeds fuzz_tokenizer_json and stands
 * in for the real vocabulary when fuzz_tokenize cannot find it. */
char *fuzz_tokenizer_json(size_t *len);

/* One fixed config.json of fuzz_safetensors and the shapes a checkpoint needs to match it
 * (gen_seeds writes such checkpoints). */
typedef struct fuzz_st_config {
    const char *json;
    int n_layers, n_embd, n_heads, n_kv_heads, head_dim, n_ff, n_vocab;
    bool tied;
} fuzz_st_config;

#define FUZZ_ST_N_CONFIGS 3
extern const fuzz_st_config fuzz_st_configs[FUZZ_ST_N_CONFIGS];

#endif
