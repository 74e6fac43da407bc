/*
 * cmd_tokenize.c - `archrouter tokenize MODEL TEXT|-`: token ids and pieces of a text.
 *
 * The tokenizer comes from a GGUF file (a vocabulary-only one will do), a checkpoint
 * directory with tokenizer.json, or a tokenizer.json. Added tokens written in the text
 * ("<|im_start|>") are parsed unless --no-special. Output: one "id<TAB>piece" line per
 * token, or JSON (--json); --jsonl reads {"text": ...} lines from stdin and writes one
 * {"ids": [...]} line per input line (an {"error": ...} line for a bad one, so output
 * lines stay aligned with input lines).
 */
#include "cli.h"

#include "archrouter.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static int usage(FILE *f) {
    fputs("Usage: archrouter tokenize [--no-special] [--replace-invalid] [--json] MODEL TEXT|-\n"
          "       archrouter tokenize [--no-special] [--replace-invalid] --jsonl MODEL\n\n"
          "Token ids of TEXT (or of standard input for '-') with the model's tokenizer.\n"
          "MODEL is a GGUF file, a checkpoint directory with tokenizer.json, or a\n"
          "tokenizer.json.\n\n"
          "Options:\n"
          "  --no-special       treat added tokens such as <|im_start|> as ordinary text\n"
          "                     (how user-supplied text is tokenized)\n"
          "  --replace-invalid  replace bytes that are not UTF-8 with U+FFFD instead of\n"
          "                     failing\n"
          "  --json             print {\"ids\": [...], \"pieces\": [...]}\n"
          "  --jsonl            read JSON lines {\"text\": ...} from standard input, write\n"
          "                     one {\"ids\": [...]} line each ({\"error\": ...} for a bad line)\n"
          "  -h, --help         show this help\n\n"
          "Pieces are shown as written in the vocabulary (byte-level: 'Ġ' is a space).\n",
          f);
    return f == stdout ? ar_cli_finish_output(AR_EXIT_OK) : AR_EXIT_USAGE;
}

/* Tokenize into a malloc'd array, growing it once if the first guess is short. */
static ar_status tokenize_alloc(const ar_tokenizer *tok, const char *text, size_t len,
                                uint32_t flags, int32_t **ids, size_t *n) {
    size_t cap = len + 16;
    for (int attempt = 0; attempt < 2; attempt++) {
        *ids = malloc(cap * sizeof **ids);
        if (!*ids) return AR_ERR_NOMEM;
        ar_status st = ar_tokenize(tok, text, len, flags, *ids, cap, n);
        if (st != AR_ERR_BUFFER_TOO_SMALL) return st;
        free(*ids);
        *ids = NULL;
        cap = *n;
    }
    return AR_ERR_INTERNAL;
}

/* A message for a failed ar_tokenize(); `offset` is its *n_ids. */
static void tokenize_error(ar_status st, size_t offset, char *buf, size_t size) {
    if (st == AR_ERR_INVALID_INPUT)
        snprintf(buf, size, "text is not valid UTF-8 (byte offset %zu); use --replace-invalid",
                 offset);
    else
        snprintf(buf, size, "%s", ar_strerror(st));
}

static int print_tokens(const ar_tokenizer *tok, const int32_t *ids, size_t n, bool json) {
    if (!json) {
        for (size_t i = 0; i < n; i++) printf("%d\t%s\n", ids[i], ar_token_text(tok, ids[i]));
        return AR_EXIT_OK;
    }
    json_t *o = json_object(), *ja = json_array(), *jp = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(ja, json_integer(ids[i]));
        json_array_append_new(jp, json_string(ar_token_text(tok, ids[i])));
    }
    json_object_set_new(o, "ids", ja);
    json_object_set_new(o, "pieces", jp);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) return ar_cli_fail("out of memory formatting JSON");
    printf("%s\n", s);
    free(s);
    return AR_EXIT_OK;
}

static void print_json_line(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", s ? s : "{\"error\":\"out of memory\"}");
    free(s);
    json_decref(o);
}

static json_t *error_line(long line, const char *msg) {
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string(msg));
    json_object_set_new(o, "line", json_integer(line));
    return o;
}

/* One output line per input line; returns the number of failed lines. */
static long run_jsonl(const ar_tokenizer *tok, uint32_t flags) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0, failed = 0;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        lineno++;
        json_error_t jerr;
        json_t *in = json_loadb(line, (size_t)len, JSON_ALLOW_NUL, &jerr);
        json_t *text = json_object_get(in, "text");
        if (!json_is_string(text)) {
            print_json_line(
                error_line(lineno, in ? "expected an object with a string \"text\"" : jerr.text));
            json_decref(in);
            failed++;
            continue;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        ar_status st =
            tokenize_alloc(tok, json_string_value(text), json_string_length(text), flags, &ids, &n);
        if (st != AR_OK) {
            char msg[160];
            tokenize_error(st, n, msg, sizeof msg);
            print_json_line(error_line(lineno, msg));
            failed++;
        } else {
            json_t *o = json_object(), *ja = json_array();
            for (size_t i = 0; i < n; i++) json_array_append_new(ja, json_integer(ids[i]));
            json_object_set_new(o, "ids", ja);
            print_json_line(o);
        }
        free(ids);
        json_decref(in);
    }
    free(line);
    return failed;
}

int ar_cmd_tokenize(int argc, char **argv) {
    bool json = false, jsonl = false, special = true, replace = false, no_more_opts = false;
    const char *model = NULL, *text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!no_more_opts && a[0] == '-' && a[1]) {
            if (ar_cli_is_help(a))
                return usage(stdout);
            else if (strcmp(a, "--json") == 0)
                json = true;
            else if (strcmp(a, "--jsonl") == 0)
                jsonl = true;
            else if (strcmp(a, "--no-special") == 0)
                special = false;
            else if (strcmp(a, "--replace-invalid") == 0)
                replace = true;
            else if (strcmp(a, "--") == 0)
                no_more_opts = true;
            else
                return ar_cli_usage_error("tokenize", "unknown option '%s'", a);
        } else if (!model) {
            model = a;
        } else if (!text) {
            text = a;
        } else {
            return ar_cli_usage_error("tokenize", "unexpected argument '%s'", a);
        }
    }
    if (!model) return ar_cli_usage_error("tokenize", "no model given");
    if (jsonl && text) return ar_cli_usage_error("tokenize", "--jsonl reads standard input");
    if (!jsonl && !text) return ar_cli_usage_error("tokenize", "no text given (use '-' for stdin)");

    ar_tokenizer *tok = NULL;
    ar_status st = ar_tokenizer_open(model, NULL, &tok);
    if (st != AR_OK) {
        int rc = ar_cli_fail("%s (%s)", ar_tokenizer_errmsg(tok), ar_strerror(st));
        ar_tokenizer_free(tok);
        return rc;
    }
    uint32_t flags =
        (special ? AR_TOKENIZE_SPECIAL : 0) | (replace ? AR_TOKENIZE_REPLACE_INVALID : 0);
    int rc = AR_EXIT_OK;
    if (jsonl) {
        long failed = run_jsonl(tok, flags);
        if (failed) rc = ar_cli_fail("%ld line(s) could not be tokenized", failed);
    } else {
        size_t len = strlen(text);
        char *owned = NULL;
        if (strcmp(text, "-") == 0) {
            owned = ar_cli_read_stream(stdin, &len);
            if (!owned) rc = ar_cli_fail("reading standard input failed");
            text = owned;
        }
        int32_t *ids = NULL;
        size_t n = 0;
        if (rc == AR_EXIT_OK) {
            st = tokenize_alloc(tok, text, len, flags, &ids, &n);
            if (st != AR_OK) {
                char msg[160];
                tokenize_error(st, n, msg, sizeof msg);
                rc = ar_cli_fail("%s", msg);
            } else {
                rc = print_tokens(tok, ids, n, json);
            }
        }
        free(ids);
        free(owned);
    }
    ar_tokenizer_free(tok);
    return ar_cli_finish_output(rc);
}
