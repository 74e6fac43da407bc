/*
 * mapfile.c - see mapfile.h. An empty file gives a non-NULL zero-length range so that
 * parsers see "truncated" rather than a NULL pointer.
 */
#define _GNU_SOURCE
#include "base/mapfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const uint8_t empty_file[1];

static ar_status read_all(int fd, uint8_t *buf, size_t size, const char *path, ar_err *err) {
    size_t done = 0;
    while (done < size) {
        ssize_t r = read(fd, buf + done, size - done);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return ar_errf(err, AR_ERR_IO, "%s: read: %s", path, strerror(errno));
        if (r == 0) return ar_errf(err, AR_ERR_IO, "%s: file shrank while reading", path);
        done += (size_t)r;
    }
    return AR_OK;
}

ar_status ar_mapfile_open(ar_mapfile *m, const char *path, bool use_mmap, uint64_t max_bytes,
                          ar_err *err) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ar_errf(err, AR_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    ar_status rc = AR_OK;
    if (fstat(fd, &st) != 0) {
        rc = ar_errf(err, AR_ERR_IO, "%s: %s", path, strerror(errno));
        goto done;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = ar_errf(err, AR_ERR_IO, "%s: is a directory", path);
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = ar_errf(err, AR_ERR_IO, "%s: not a regular file", path);
        goto done;
    }
    if (max_bytes > 0 && (uint64_t)st.st_size > max_bytes) {
        rc = ar_errf(err, AR_ERR_LIMIT, "%s: file is %lld bytes, over the limit of %llu", path,
                     (long long)st.st_size, (unsigned long long)max_bytes);
        goto done;
    }
    if ((uint64_t)st.st_size > SIZE_MAX / 2) {
        rc = ar_errf(err, AR_ERR_LIMIT, "%s: file too large for this address space", path);
        goto done;
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        m->data = empty_file;
        goto done;
    }
    if (use_mmap) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p != MAP_FAILED) {
            m->data = p;
            m->size = size;
            m->mapped = true;
            goto done;
        }
        /* Fall back to reading (e.g. a file system without mmap). */
    }
    uint8_t *buf = malloc(size);
    if (!buf) {
        rc = ar_errf(err, AR_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, size);
        goto done;
    }
    rc = read_all(fd, buf, size, path, err);
    if (rc != AR_OK) {
        free(buf);
        goto done;
    }
    m->data = buf;
    m->size = size;
done:
    close(fd);
    return rc;
}

void ar_mapfile_borrow(ar_mapfile *m, const uint8_t *data, size_t size) {
    memset(m, 0, sizeof *m);
    m->data = size ? data : empty_file;
    m->size = size;
    m->borrowed = true;
}

void ar_mapfile_close(ar_mapfile *m) {
    if (m->data && m->size > 0 && !m->borrowed) {
        if (m->mapped)
            munmap((void *)m->data, m->size);
        else
            free((void *)m->data);
    }
    memset(m, 0, sizeof *m);
}
