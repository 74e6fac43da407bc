/*
 * types.c - the traits table of tensor element types (see types.h) and type names.
 *
 * `traits`, indexed by GGUF/ggml type id, holds the 13 types archrouter can load (block
 * geometry and the scalar reference to_float from dequant.c); ar_type_known_name() names
 * every other id ggml has assigned, so a loader can say "IQ2_XS is not supported" instead
 * of "unknown type 17". Names are GGUF's spelling (gguf-py GGMLQuantizationType), e.g.
 * "Q4_K"; ggml_type_name() spells some of them in lower case ("q4_K").
 */
#include "kernels/types.h"

#include "base/checked.h"
#include "kernels/quant.h"

#include <stddef.h>

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const ar_type_traits traits[] = {
    [AR_TYPE_F32] = {"F32", 1, 4, false, ar_dequant_f32},
    [AR_TYPE_F16] = {"F16", 1, 2, false, ar_dequant_f16},
    [AR_TYPE_BF16] = {"BF16", 1, 2, false, ar_dequant_bf16},
    [AR_TYPE_Q4_0] = {"Q4_0", QK4_0, sizeof(block_q4_0), true, ar_dequant_q4_0},
    [AR_TYPE_Q4_1] = {"Q4_1", QK4_1, sizeof(block_q4_1), true, ar_dequant_q4_1},
    [AR_TYPE_Q5_0] = {"Q5_0", QK5_0, sizeof(block_q5_0), true, ar_dequant_q5_0},
    [AR_TYPE_Q5_1] = {"Q5_1", QK5_1, sizeof(block_q5_1), true, ar_dequant_q5_1},
    [AR_TYPE_Q8_0] = {"Q8_0", QK8_0, sizeof(block_q8_0), true, ar_dequant_q8_0},
    [AR_TYPE_Q2_K] = {"Q2_K", QK_K, sizeof(block_q2_K), true, ar_dequant_q2_k},
    [AR_TYPE_Q3_K] = {"Q3_K", QK_K, sizeof(block_q3_K), true, ar_dequant_q3_k},
    [AR_TYPE_Q4_K] = {"Q4_K", QK_K, sizeof(block_q4_K), true, ar_dequant_q4_k},
    [AR_TYPE_Q5_K] = {"Q5_K", QK_K, sizeof(block_q5_K), true, ar_dequant_q5_k},
    [AR_TYPE_Q6_K] = {"Q6_K", QK_K, sizeof(block_q6_K), true, ar_dequant_q6_k},
};

const ar_type_traits *ar_type_traits_get(uint32_t type) {
    if (type >= N_ELEMS(traits) || traits[type].name == NULL) return NULL;
    return &traits[type];
}

/* ggml's other type ids (ggml/include/ggml.h, enum ggml_type, up to Q2_0 = 42),
 * including ids whose support ggml has since removed, so old files get a precise error. */
const char *ar_type_known_name(uint32_t type) {
    switch (type) {
    case 4: return "Q4_2"; /* 4, 5: removed from ggml long ago */
    case 5: return "Q4_3";
    case 9: return "Q8_1"; /* 9, 15: ggml's formats for activations in dot products */
    case 15: return "Q8_K";
    case 16: return "IQ2_XXS"; /* 16..23, 29: the importance-matrix "i-quants" */
    case 17: return "IQ2_XS";
    case 18: return "IQ3_XXS";
    case 19: return "IQ1_S";
    case 20: return "IQ4_NL";
    case 21: return "IQ3_S";
    case 22: return "IQ2_S";
    case 23: return "IQ4_XS";
    case 24: return "I8";
    case 25: return "I16";
    case 26: return "I32";
    case 27: return "I64";
    case 28: return "F64";
    case 29: return "IQ1_M";
    case 31: return "Q4_0_4_4"; /* 31..33, 36..38: repacked layouts, no longer in files */
    case 32: return "Q4_0_4_8";
    case 33: return "Q4_0_8_8";
    case 34: return "TQ1_0"; /* 34, 35: ternary */
    case 35: return "TQ2_0";
    case 36: return "IQ4_NL_4_4";
    case 37: return "IQ4_NL_4_8";
    case 38: return "IQ4_NL_8_8";
    case 39: return "MXFP4";
    case 40: return "NVFP4";
    case 41: return "Q1_0";
    case 42: return "Q2_0";
    default: return NULL; /* supported (see traits) or unknown */
    }
}

/* *bytes is left unchanged when this returns false. */
bool ar_type_row_bytes(const ar_type_traits *tt, uint64_t n, uint64_t *bytes) {
    if (!tt || !bytes) return false;
    const uint64_t blck = (uint64_t)tt->blck_size;
    if (n % blck != 0) return false;
    uint64_t total;
    if (!ar_mul_u64(n / blck, (uint64_t)tt->type_size, &total)) return false;
    *bytes = total;
    return true;
}

const char *ar_type_name(ar_type type) {
    const ar_type_traits *tt = ar_type_traits_get((uint32_t)type);
    return tt ? tt->name : NULL;
}
