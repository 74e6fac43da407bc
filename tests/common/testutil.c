/*
 * testutil.c - see testutil.h.
 */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef AR_TESTDATA_DEFAULT
#define AR_TESTDATA_DEFAULT "../shared/testdata"
#endif

int ar_test_in_ci(void) {
    const char *ci = getenv("CI");
    return ci && (strcmp(ci, "true") == 0 || strcmp(ci, "1") == 0);
}

const char *ar_test_data_dir(void) {
    static int warned;
    const char *dir = getenv("ARCHROUTER_TESTDATA");
    if (!dir || !*dir) dir = AR_TESTDATA_DEFAULT;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        if (!warned++)
            fprintf(stderr,
                    "note: test data not found at %s (set ARCHROUTER_TESTDATA); golden tests "
                    "are %s\n",
                    dir, ar_test_in_ci() ? "FAILED under CI=true" : "skipped");
        return NULL;
    }
    return dir;
}

const char *ar_test_data_path(const char *rel) {
    static char buf[4096];
    const char *dir = ar_test_data_dir();
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "(missing)", rel);
    return buf;
}

char *ar_test_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 + 1 > cap) {
            cap = (n + 65536 + 1) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static char temp_dir[256];

static void remove_temp_dir(void) {
    if (!temp_dir[0]) return;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", temp_dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", temp_dir);
}

const char *ar_test_temp_dir(void) {
    if (!temp_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(temp_dir, sizeof temp_dir, "%s/artest.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(temp_dir)) {
            temp_dir[0] = 0;
            return NULL;
        }
        atexit(remove_temp_dir);
    }
    return temp_dir;
}

const char *ar_test_write_temp(int slot, const char *name, const void *data, size_t len) {
    static char paths[8][512];
    const char *dir = ar_test_temp_dir();
    if (!dir || slot < 0 || slot >= 8) return NULL;
    snprintf(paths[slot], sizeof paths[slot], "%s/%s", dir, name);
    FILE *f = fopen(paths[slot], "wb");
    if (!f) return NULL;
    if (len && fwrite(data, 1, len, f) != len) {
        fclose(f);
        return NULL;
    }
    if (fclose(f) != 0) return NULL;
    return paths[slot];
}
