/*
 * fuzz_messages.c - libFuzzer target for the OpenAI messages parser: the input is the JSON
 * text, parsed with ar_messages_parse(). A failed parse must leave an empty list and a
 * message; a list that parses must hold known roles and NUL-free content of the stated
 * length, within the message cap.
 */
#include "fuzz_model.h"
#include "router/messages.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size ? size : 1); /* exact size: ASan sees over-reads */
    FUZZ_CHECK(copy != NULL);
    memcpy(copy, data, size);
    ar_err e = {{0}};
    ar_msg_list l;
    ar_status st = ar_messages_parse(copy, size, &l, &e);
    if (st == AR_OK) {
        FUZZ_CHECK(l.n <= AR_MSG_MAX_MESSAGES);
        FUZZ_CHECK((l.n == 0) == (l.msgs == NULL));
        for (size_t i = 0; i < l.n; i++) {
            const ar_msg *m = &l.msgs[i];
            FUZZ_CHECK(strcmp(ar_msg_role_name(m->role), "?") != 0);
            FUZZ_CHECK(m->content != NULL && strlen(m->content) == m->content_len);
            FUZZ_CHECK(!m->content_null || m->content_len == 0);
        }
        ar_msg_list_free(&l);
        FUZZ_CHECK(l.n == 0 && l.msgs == NULL);
    } else {
        fuzz_check_error(st, e.msg);
        FUZZ_CHECK(l.n == 0 && l.msgs == NULL);
    }
    free(copy);
    return 0;
}
