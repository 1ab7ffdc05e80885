/* The POSIX file store: write a temporary file, fsync it, rename it over the old one, fsync
 * the directory. After a crash at any point the file holds the old or the new record. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tether/port.h"
#include "tether/store.h"

static tether_status file_read(void *context, uint8_t *buf, size_t cap, size_t *out_len)
{
    const tether_file_store *fs = context;
    tether_status st = tether_port_read_file(fs->path, buf, cap, out_len);
    return st == TETHER_FILE_NOT_FOUND ? TETHER_STORE_EMPTY : st;
}

static tether_status sync_directory(const char *path)
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
        return TETHER_STORE_WRITE_FAILED;
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? TETHER_OK : TETHER_STORE_WRITE_FAILED;
}

static tether_status file_write(void *context, const uint8_t *buf, size_t len)
{
    const tether_file_store *fs = context;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", fs->path) >= sizeof tmp)
        return TETHER_INVALID_ARGUMENT;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return TETHER_STORE_WRITE_FAILED;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    int ok = done == len && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, fs->path) != 0) {
        unlink(tmp);
        return TETHER_STORE_WRITE_FAILED;
    }
    return sync_directory(fs->path);
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
