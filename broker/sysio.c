/*
 * sysio — real system calls behind the replaceable table (see sysio.h).
 */
#include "broker/sysio.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int real_open(const char *path, int flags, mode_t mode)
{
    int fd = open(path, flags | O_CLOEXEC, mode);
    return fd < 0 ? -errno : fd;
}

static int real_close(int fd)
{
    return close(fd) < 0 ? -errno : 0;
}

static ssize_t real_pread(int fd, void *buf, size_t n, off_t off)
{
    ssize_t r = pread(fd, buf, n, off);
    return r < 0 ? -errno : r;
}

static ssize_t real_pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
    ssize_t r = pwritev(fd, iov, cnt, off);
    return r < 0 ? -errno : r;
}

static int real_fdatasync(int fd)
{
    return fdatasync(fd) < 0 ? -errno : 0;
}

static int real_fsync(int fd)
{
    return fsync(fd) < 0 ? -errno : 0;
}

static int real_ftruncate(int fd, off_t len)
{
    return ftruncate(fd, len) < 0 ? -errno : 0;
}

static int real_rename(const char *from, const char *to)
{
    return rename(from, to) < 0 ? -errno : 0;
}

static int real_unlink(const char *path)
{
    return unlink(path) < 0 ? -errno : 0;
}

static int real_mkdir(const char *path, mode_t mode)
{
    return mkdir(path, mode) < 0 ? -errno : 0;
}

static const struct sysio real = {
    .open = real_open,
    .close = real_close,
    .pread = real_pread,
    .pwritev = real_pwritev,
    .fdatasync = real_fdatasync,
    .fsync = real_fsync,
    .ftruncate = real_ftruncate,
    .rename = real_rename,
    .unlink = real_unlink,
    .mkdir = real_mkdir,
};

struct sysio sysio = real;

void sysio_reset(void)
{
    sysio = real;
}

int sys_pwritev_all(int fd, const struct iovec *iov_in, int cnt, off_t off)
{
    /* A private copy: a short write moves through it.  Small vectors (the
     * FUSE write path: held bytes + the new ones) stay on the stack. */
    struct iovec small[8], *iov = small;
    if (cnt < 0)
        return -EINVAL;
    if (cnt > 8 && !(iov = malloc(sizeof(*iov) * (size_t)cnt)))
        return -ENOMEM;
    memcpy(iov, iov_in, sizeof(*iov) * (size_t)cnt);
    int i = 0, rc = 0;
    while (i < cnt) {
        if (iov[i].iov_len == 0) {
            i++;
            continue;
        }
        int n = cnt - i < IOV_MAX ? cnt - i : IOV_MAX;
        ssize_t r = sysio.pwritev(fd, iov + i, n, off);
        if (r == -EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? (int)r : -ENOSPC;
            break;
        }
        off += r;
        /* Skip what was written: a short write continues where it stopped. */
        while (r > 0 && i < cnt) {
            if ((size_t)r >= iov[i].iov_len) {
                r -= (ssize_t)iov[i].iov_len;
                i++;
            } else {
                iov[i].iov_base = (char *)iov[i].iov_base + r;
                iov[i].iov_len -= (size_t)r;
                r = 0;
            }
        }
    }
    if (iov != small)
        free(iov);
    return rc;
}

int sys_pwrite_all(int fd, const void *buf, size_t n, off_t off)
{
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = n};
    return sys_pwritev_all(fd, &iov, 1, off);
}

int sys_pread_all(int fd, void *buf, size_t n, off_t off)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = sysio.pread(fd, p, n, off);
        if (r == -EINTR)
            continue;
        if (r < 0)
            return (int)r;
        if (r == 0)
            return -EIO;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int sys_fsync_dir(const char *dir)
{
    int fd = sysio.open(dir, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0)
        return fd;
    int rc = sysio.fsync(fd);
    sysio.close(fd);
    return rc;
}

int sys_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name) >= (int)sizeof(tmp) ||
        snprintf(dst, sizeof(dst), "%s/%s", dir, name) >= (int)sizeof(dst))
        return -ENAMETOOLONG;
    int fd = sysio.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return fd;
    int rc = sys_pwrite_all(fd, data, len, 0);
    if (rc == 0)
        rc = sysio.fsync(fd);
    sysio.close(fd);
    if (rc == 0)
        rc = sysio.rename(tmp, dst);
    if (rc == 0)
        rc = sys_fsync_dir(dir);
    if (rc < 0)
        sysio.unlink(tmp);
    return rc;
}

int sys_read_small(const char *path, size_t max, char **out, size_t *len)
{
    int fd = sysio.open(path, O_RDONLY, 0);
    if (fd < 0)
        return fd;
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto err_close;
    }
    if ((size_t)st.st_size > max) {
        rc = -EFBIG;
        goto err_close;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        rc = -ENOMEM;
        goto err_close;
    }
    rc = sys_pread_all(fd, buf, (size_t)st.st_size, 0);
    if (rc < 0) {
        free(buf);
        goto err_close;
    }
    buf[st.st_size] = '\0';
    *out = buf;
    *len = (size_t)st.st_size;
err_close:
    sysio.close(fd);
    return rc;
}

int sys_remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOTDIR ? sysio.unlink(path) : -errno;
    int first = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[PATH_MAX];
        if (snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name) >= (int)sizeof(sub)) {
            first = first ? first : -ENAMETOOLONG;
            continue;
        }
        int rc = de->d_type == DT_DIR ? sys_remove_tree(sub) : sysio.unlink(sub);
        if (rc < 0 && !first)
            first = rc;
    }
    closedir(d);
    if (rmdir(path) < 0 && !first)
        first = -errno;
    return first;
}

int64_t sys_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool sys_exists_in(const char *dir, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    return snprintf(path, sizeof(path), "%s/%s", dir, name) < (int)sizeof(path) &&
           stat(path, &st) == 0;
}

uint64_t sys_read_number(const char *dir, const char *name)
{
    char path[PATH_MAX], *buf, *end;
    size_t len;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
        sys_read_small(path, 64, &buf, &len) < 0)
        return 0;
    if (len > 1 && buf[len - 1] == '\n')
        buf[len - 1] = '\0';
    errno = 0;
    unsigned long long v = buf[0] >= '0' && buf[0] <= '9' ? strtoull(buf, &end, 10) : 0;
    if (errno || buf[0] < '0' || buf[0] > '9' || *end || v > INT64_MAX)
        v = 0;
    free(buf);
    return (uint64_t)v;
}

int sys_write_number(const char *dir, const char *name, uint64_t v)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%" PRIu64 "\n", v);
    return sys_write_atomic(dir, name, buf, (size_t)n);
}

int sys_syncfs(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = syncfs(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}
