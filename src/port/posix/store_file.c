/* The POSIX file store: write a temporary file of its own, fsync it, rename it over the old one,
 * fsync the directory. After a crash at any point the file holds the old or the new record.
 *
 * Every save creates its own temporary file, exclusively and without following links
 * (O_CREAT | O_EXCL | O_NOFOLLOW, a unique name in the same directory): two processes saving the
 * same path at once (`register --force` while `run` re-registers) never write into one file, and
 * a link planted at the temporary name is refused instead of followed. The last rename wins;
 * each rename replaces a complete, synced file. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tether/port.h"
#include "tether/store.h"

/* Attempts at a fresh temporary name before giving up (each collision means another writer, or
 * a file left by a writer that crashed, holds that exact name). */
#define TMP_ATTEMPTS 16

static tether_status file_read(void *context, uint8_t *buf, size_t cap, size_t *out_len)
{
    const tether_file_store *fs = context;
    tether_status st = tether_port_read_file(fs->path, buf, cap, out_len);
    return st == TETHER_FILE_NOT_FOUND ? TETHER_STORE_EMPTY : st;
}

static int sync_directory(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    return close(fd) == 0 ? rc : -1;
}

/* Creates PATH.tmp-<pid>-<n>: a name no other live writer uses, opened only if it did not
 * exist, never through a link. */
static int create_temporary(const char *path, char *tmp, size_t cap)
{
    static unsigned counter;
    for (int attempt = 0; attempt < TMP_ATTEMPTS; attempt++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        unsigned n = ++counter ^ (unsigned)now.tv_nsec;
        if ((size_t)snprintf(tmp, cap, "%s.tmp-%ld-%08x", path, (long)getpid(), n) >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    return 0;
}

/* The state each failure leaves:
 *  - creating, writing, syncing or closing the temporary file fails: it is removed (best effort)
 *    and the stored file was not touched: STORE_WRITE_FAILED, the previous record is intact;
 *  - the rename fails: the same;
 *  - the rename succeeded but the directory could not be synced: the new record is in place and
 *    read back now, but a power cut before the directory reaches the disk may bring back the
 *    previous one: STORE_NOT_DURABLE. */
static tether_status file_write(void *context, const uint8_t *buf, size_t len)
{
    const tether_file_store *fs = context;
    char tmp[4096];
    if (strlen(fs->path) + 32 >= sizeof tmp)
        return TETHER_INVALID_ARGUMENT;
    int fd = create_temporary(fs->path, tmp, sizeof tmp);
    if (fd < 0)
        return TETHER_STORE_WRITE_FAILED;
    int ok = write_all(fd, buf, len) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, fs->path) != 0) {
        unlink(tmp);
        return TETHER_STORE_WRITE_FAILED;
    }
    return sync_directory(fs->path) == 0 ? TETHER_OK : TETHER_STORE_NOT_DURABLE;
}

static tether_status file_erase(void *context)
{
    const tether_file_store *fs = context;
    if (unlink(fs->path) != 0 && errno != ENOENT)
        return TETHER_STORE_WRITE_FAILED;
    return TETHER_OK;
}

tether_store tether_file_store_init(tether_file_store *fs, const char *path)
{
    fs->path = path;
    tether_store s = {.read = file_read, .write = file_write, .erase = file_erase, .context = fs};
    return s;
}
