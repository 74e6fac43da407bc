/*
 * header_c99.c - compiled (never run) as strict C99 with -pedantic -Werror to prove that
 * include/archrouter.h is plain C99: no C11 features, no GNU extensions.
 */
#include "archrouter.h"

int ar_header_c99_probe(void);

int ar_header_c99_probe(void) {
    ar_model_params p = ar_model_default_params();
    ar_model_info info;
    ar_tensor_info ti;
    (void)info;
    (void)ti;
    return (int)p.use_mmap + (int)AR_OK + (int)AR_TYPE_Q4_K;
}
