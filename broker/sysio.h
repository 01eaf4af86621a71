/*
 * sysio — the system calls of the store, behind a replaceable table.
 *
 * Every file operation of the segment store, the partition log and the topic
 * metadata goes through `sysio`, so that unit tests can swap single entries to
 * inject EIO, ENOSPC or short writes (SQLite's os_unix.c habit).  Production
 * code never calls open/pwrite/fsync... directly.
 *
 * All wrappers return 0 (or a byte count) on success and a negative errno on
 * failure; errno itself is never the channel for errors.
 */
#ifndef MK_SYSIO_H
#define MK_SYSIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct sysio {
    int (*open)(const char *path, int flags, mode_t mode);
    int (*close)(int fd);
    ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
    ssize_t (*pwritev)(int fd, const struct iovec *iov, int cnt, off_t off);
    int (*fdatasync)(int fd);
    int (*fsync)(int fd);
    int (*ftruncate)(int fd, off_t len);
    int (*rename)(const char *from, const char *to);
    int (*unlink)(const char *path);
    int (*mkdir)(const char *path, mode_t mode);
};

/* The table in use.  Tests may replace entries and must restore them
 * (sysio_reset) before the next test.  Only the loop thread and the
 * thread-pool jobs it starts use it; tests change it while no job runs. */
extern struct sysio sysio;

/* Restores the real system calls. */
void sysio_reset(void);

/* Writes all of buf at off, retrying short writes; on failure returns the
 * negative errno (ENOSPC when the disk filled up part-way) and the file may
 * hold part of the bytes: the caller truncates back. */
int sys_pwrite_all(int fd, const void *buf, size_t n, off_t off);
int sys_pwritev_all(int fd, const struct iovec *iov, int cnt, off_t off);

/* Reads exactly n bytes at off; -EIO if the file is shorter. */
int sys_pread_all(int fd, void *buf, size_t n, off_t off);

/* fsync of a directory, so that names created, renamed or removed in it
 * survive a crash. */
int sys_fsync_dir(const char *dir);

/* Replaces dir/name with data atomically and durably: writes dir/name.tmp,
 * fsyncs it, renames it over dir/name, fsyncs dir.  After a crash the file
 * holds either the old or the new content, never a mix. */
int sys_write_atomic(const char *dir, const char *name, const void *data, size_t len);
/* A small file holding one decimal number and '\n' (an applied or commit
 * offset): read (0 when missing or unreadable) and replaced atomically. */
uint64_t sys_read_number(const char *dir, const char *name);
int sys_write_number(const char *dir, const char *name, uint64_t v);

/* syncfs(2) of the file system holding dir. */
int sys_syncfs(const char *dir);

/* Whether dir/name exists. */
bool sys_exists_in(const char *dir, const char *name);

/* Reads a whole small file into a NUL-terminated malloc'ed buffer (caller
 * frees).  Refuses files larger than max with -EFBIG. */
int sys_read_small(const char *path, size_t max, char **out, size_t *len);

/* Removes a directory tree (used for deleted topics).  Best effort on
 * entries, returns the first error. */
int sys_remove_tree(const char *path);

/* Milliseconds since the epoch (wall clock, for record timestamps). */
int64_t sys_now_ms(void);

#endif
