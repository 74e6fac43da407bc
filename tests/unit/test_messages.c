/*
 * test_messages.c - the OpenAI `messages` parser (src/router/messages.c): string, null and
 * part-array content, every role, request objects, errors naming index and field, caps,
 * and the contract that a failed parse leaves an empty list.
 */
#include "testutil.h"

#include "router/messages.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ar_msg_list parse_ok(const char *json) {
    ar_msg_list l;
    ar_err e = {{0}};
    ar_status st = ar_messages_parse(json, strlen(json), &l, &e);
    if (st != AR_OK) fail_msg("unexpected error %d: %s", st, e.msg);
    return l;
}

static void expect_err(const char *json, ar_status want, const char *what) {
    ar_msg_list l = {(ar_msg *)1, 99}; /* must be emptied */
    ar_err e = {{0}};
    ar_status st = ar_messages_parse(json, strlen(json), &l, &e);
    if (st != want || !strstr(e.msg, what))
        fail_msg("status %d (want %d), message '%s' (want '%s')", st, want, e.msg, what);
    assert_null(l.msgs);
    assert_int_equal(l.n, 0);
}

static void test_string_content(void **state) {
    (void)state;
    ar_msg_list l = parse_ok("[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                             "{\"role\":\"user\",\"content\":\"Book a flight to Lisbon \\u00e9\"},"
                             "{\"role\":\"assistant\",\"content\":\"\"}]");
    assert_int_equal(l.n, 3);
    assert_int_equal(l.msgs[0].role, AR_MSG_SYSTEM);
    assert_string_equal(l.msgs[0].content, "Be brief.");
    assert_int_equal(l.msgs[0].content_len, 9);
    assert_false(l.msgs[0].content_null);
    assert_int_equal(l.msgs[1].role, AR_MSG_USER);
    assert_string_equal(l.msgs[1].content, "Book a flight to Lisbon \xc3\xa9");
    assert_int_equal(l.msgs[2].role, AR_MSG_ASSISTANT);
    assert_string_equal(l.msgs[2].content, "");
    assert_false(l.msgs[2].content_null);
    ar_msg_list_free(&l);
    assert_null(l.msgs);
    assert_int_equal(l.n, 0);
}

static void test_all_roles(void **state) {
    (void)state;
    const char *names[] = {"system", "developer", "user", "assistant", "tool", "function"};
    char json[1024], *w = json;
    w += sprintf(w, "[");
    for (int i = 0; i < 6; i++)
        w += sprintf(w, "%s{\"role\":\"%s\",\"content\":\"m%d\"}", i ? "," : "", names[i], i);
    sprintf(w, "]");
    ar_msg_list l = parse_ok(json);
    assert_int_equal(l.n, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(l.msgs[i].role, i);
        assert_string_equal(ar_msg_role_name(l.msgs[i].role), names[i]);
        char want[8];
        snprintf(want, sizeof want, "m%d", i);
        assert_string_equal(l.msgs[i].content, want);
    }
    ar_msg_list_free(&l);
    assert_string_equal(ar_msg_role_name((ar_msg_role)6), "?");
    assert_string_equal(ar_msg_role_name((ar_msg_role)-1), "?");
}

static void test_null_and_absent_content(void **state) {
    (void)state;
    ar_msg_list l =
        parse_ok("[{\"role\":\"user\",\"content\":\"weather?\"},"
                 "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
                 "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"sunny\"},"
                 "{\"role\":\"assistant\"}]");
    assert_int_equal(l.n, 4);
    assert_true(l.msgs[1].content_null);
    assert_string_equal(l.msgs[1].content, "");
    assert_int_equal(l.msgs[1].content_len, 0);
    assert_int_equal(l.msgs[2].role, AR_MSG_TOOL);
    assert_string_equal(l.msgs[2].content, "sunny");
    assert_true(l.msgs[3].content_null);
    ar_msg_list_free(&l);
}

static void test_parts(void **state) {
    (void)state;
    ar_msg_list l = parse_ok(
        "[{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"Remove the background\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},"
        "{\"type\":\"text\",\"text\":\"and make it brighter\"},"
        "{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"x\",\"format\":\"wav\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"u\"}}]},"
        "{\"role\":\"user\",\"content\":[]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"\"},"
        "{\"type\":\"text\",\"text\":\"b\"}]}]");
    assert_int_equal(l.n, 4);
    assert_string_equal(l.msgs[0].content, "Remove the background\nand make it brighter");
    assert_int_equal(l.msgs[0].content_len, strlen("Remove the background\nand make it brighter"));
    assert_string_equal(l.msgs[1].content, ""); /* images only */
    assert_false(l.msgs[1].content_null);
    assert_string_equal(l.msgs[2].content, "");
    assert_string_equal(l.msgs[3].content, "\nb"); /* empty parts still join */
    ar_msg_list_free(&l);
}

static void test_request_object(void **state) {
    (void)state;
    ar_msg_list l = parse_ok("{\"model\":\"router\",\"stream\":true,\"temperature\":0.2,"
                             "\"messages\":[{\"role\":\"developer\",\"content\":\"x\"},"
                             "{\"role\":\"user\",\"content\":\"fix my bug\"}]}");
    assert_int_equal(l.n, 2);
    assert_int_equal(l.msgs[0].role, AR_MSG_DEVELOPER);
    assert_string_equal(l.msgs[1].content, "fix my bug");
    ar_msg_list_free(&l);
    l = parse_ok("[]");
    assert_int_equal(l.n, 0);
    assert_null(l.msgs);
    ar_msg_list_free(&l);

    /* From an already parsed value. */
    json_t *v = json_pack("{s:[{s:s,s:s}]}", "messages", "role", "user", "content", "hi");
    assert_non_null(v);
    ar_err e = {{0}};
    assert_int_equal(ar_messages_from_json(v, &l, &e), AR_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.msgs[0].content, "hi");
    ar_msg_list_free(&l);
    json_decref(v);
}

static void test_errors(void **state) {
    (void)state;
    expect_err("[{\"role\":\"user\",\"content\":\"a\"},", AR_ERR_FORMAT,
               "messages: invalid JSON at line 1 column 31");
    expect_err("", AR_ERR_FORMAT, "invalid JSON");
    expect_err("\"hello\"", AR_ERR_FORMAT, "invalid JSON");
    expect_err("{\"model\":\"x\"}", AR_ERR_FORMAT, "messages: missing from the request");
    expect_err("{\"messages\":{\"role\":\"user\"}}", AR_ERR_FORMAT, "messages: expected an array");
    expect_err("[1]", AR_ERR_FORMAT, "messages[0]: expected an object");
    expect_err("[{\"role\":\"user\",\"content\":\"a\"},{\"content\":\"b\"}]", AR_ERR_FORMAT,
               "messages[1].role: missing");
    expect_err("[{\"role\":7,\"content\":\"b\"}]", AR_ERR_FORMAT,
               "messages[0].role: expected a string");
    expect_err("[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"},"
               "{\"role\":\"robot\",\"content\":\"b\"}]",
               AR_ERR_FORMAT, "messages[2].role: unknown role 'robot'");
    expect_err("[{\"role\":\"User\",\"content\":\"b\"}]", AR_ERR_FORMAT, "unknown role 'User'");
    expect_err("[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"a\"},"
               "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":42}]",
               AR_ERR_FORMAT, "messages[3].content: expected a string, null or an array of parts");
    expect_err("[{\"role\":\"user\",\"content\":{\"type\":\"text\"}}]", AR_ERR_FORMAT,
               "messages[0].content: expected a string");
    expect_err("[{\"role\":\"user\",\"content\":[\"just text\"]}]", AR_ERR_FORMAT,
               "messages[0].content[0]: expected an object");
    expect_err("[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
               "{\"text\":\"b\"}]}]",
               AR_ERR_FORMAT, "messages[0].content[1].type: expected a string");
    expect_err("[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":null}]}]",
               AR_ERR_FORMAT, "messages[0].content[0].text: expected a string");
    /* jansson's guarantees: invalid UTF-8 and NUL never reach the list. */
    expect_err("[{\"role\":\"user\",\"content\":\"a\xff\"}]", AR_ERR_FORMAT, "invalid JSON");
    expect_err("[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]", AR_ERR_FORMAT, "invalid JSON");
    expect_err("[{\"role\":\"user\",\"content\":\"\\ud800\"}]", AR_ERR_FORMAT, "invalid JSON");

    ar_msg_list l;
    ar_err e = {{0}};
    assert_int_equal(ar_messages_parse(NULL, 3, &l, &e), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_messages_parse("[]", 2, NULL, &e), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_messages_from_json(NULL, &l, &e), AR_ERR_INVALID_ARG);
    assert_int_equal(ar_messages_parse("[]", AR_MSG_MAX_INPUT_BYTES + 1u, &l, &e), AR_ERR_LIMIT);
    ar_msg_list_free(NULL);
}

static void test_caps(void **state) {
    (void)state;
    /* One message past the cap; exactly the cap parses. */
    const char *one = "{\"role\":\"user\",\"content\":\"a\"},";
    size_t n = AR_MSG_MAX_MESSAGES + 1, ol = strlen(one);
    char *json = malloc(2 + n * ol + 1), *w = json;
    assert_non_null(json);
    *w++ = '[';
    for (size_t i = 0; i < n; i++, w += ol) memcpy(w, one, ol);
    w[-1] = ']';
    *w = '\0';
    expect_err(json, AR_ERR_LIMIT, "messages: 10001 messages, more than 10000");
    /* Drop the last message. */
    json[1 + (n - 1) * ol - 1] = ']';
    json[1 + (n - 1) * ol] = '\0';
    ar_msg_list l = parse_ok(json);
    assert_int_equal(l.n, AR_MSG_MAX_MESSAGES);
    ar_msg_list_free(&l);
    free(json);

    const char *part = "{\"type\":\"text\",\"text\":\"p\"},";
    size_t np = AR_MSG_MAX_PARTS + 1, pl = strlen(part);
    json = malloc(64 + np * pl);
    assert_non_null(json);
    w = json + sprintf(json, "[{\"role\":\"user\",\"content\":[");
    for (size_t i = 0; i < np; i++, w += pl) memcpy(w, part, pl);
    strcpy(w - 1, "]}]");
    expect_err(json, AR_ERR_LIMIT, "messages[0].content: 1025 parts, more than 1024");
    free(json);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_content),
        cmocka_unit_test(test_all_roles),
        cmocka_unit_test(test_null_and_absent_content),
        cmocka_unit_test(test_parts),
        cmocka_unit_test(test_request_object),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
