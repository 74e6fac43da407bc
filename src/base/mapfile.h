/*
 * mapfile.h - a whole file as one read-only byte range: mmap when possible, else read.
 *
 * Model weights are used in place from this range, so it lives as long as the model.
 */
#ifndef AR_BASE_MAPFILE_H
#define AR_BASE_MAPFILE_H

#include "base/err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ar_mapfile {
    const uint8_t *data;
    size_t size;
    bool mapped;   /* true: munmap on close */
    bool borrowed; /* the caller's bytes (ar_mapfile_borrow): nothing to release */
} ar_mapfile;

/* Map (or read) `path`. Refuses directories and, when max_bytes > 0, larger files.
 * On failure *m is zeroed and err names the path and the system error. */
ar_status ar_mapfile_open(ar_mapfile *m, const char *path, bool use_mmap, uint64_t max_bytes,
                          ar_err *err);

/* Wrap bytes owned by the caller (tests, fuzzing); close does not free them. */
void ar_mapfile_borrow(ar_mapfile *m, const uint8_t *data, size_t size);

/* Release the range. Safe on a zeroed struct. */
void ar_mapfile_close(ar_mapfile *m);

#endif
