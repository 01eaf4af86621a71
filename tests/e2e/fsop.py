#!/usr/bin/env python3
"""fsop.py OP ARGS... — perform one file-system call, print the outcome.

Prints "OK" (sometimes followed by a value) when the call succeeds, or the
symbolic errno name (EPERM, EINVAL, ...) when it fails, so that shell tests can
compare errno values exactly instead of parsing tool messages. Always exits 0
unless the usage is wrong.

Ops:
  open PATH FLAGS            FLAGS: comma list of r,w,rw,a,trunc,creat,excl
  truncate PATH LEN          truncate(2)
  ftruncate PATH LEN         open O_WRONLY then ftruncate(2)
  unlink PATH | rmdir PATH | mkdir PATH | mknod PATH
  rename SRC DST | link SRC DST | symlink TARGET PATH
  setxattr PATH NAME VALUE | getxattr PATH NAME | removexattr PATH NAME
  setxattr_create PATH NAME VALUE | setxattr_replace PATH NAME VALUE
                             setxattr(2) with XATTR_CREATE / XATTR_REPLACE
  stat PATH                  prints "OK <octal mode bits> <uid> <gid>"
  chmod PATH MODE            MODE in octal | chown PATH UID GID (-1: keep)
  fallocate PATH LEN         open O_WRONLY, fallocate(2) mode 0 of LEN bytes
                             at offset 0 (not glibc's emulating posix_fallocate)
  append PATH TEXT           open O_WRONLY|O_APPEND, one write(TEXT), close
                             (TEXT: Python escapes such as \\n are decoded)
  appendlen PATH N           one write of a record of N bytes ('x' * N + '\\n')
  appendall PATH N           the same, retrying short writes as cat/dd/stdio do
  pwrite PATH OFFSET TEXT    open O_WRONLY (no O_APPEND), pwrite at OFFSET
  pread PATH OFFSET LEN      prints "OK <hex-free text length>" and the bytes
  stale TOPICDIR PART TEXT   open TOPICDIR/PART for append, rmdir TOPICDIR,
                             then write TEXT on the open fd
"""
import errno
import os
import sys


def name(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def unescape(s):
    return s.encode().decode("unicode_escape").encode("latin-1")


def do_open(path, flags):
    f = 0
    for k in flags.split(","):
        f |= {
            "r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR,
            "a": os.O_APPEND, "trunc": os.O_TRUNC, "creat": os.O_CREAT,
            "excl": os.O_EXCL,
        }[k]
    fd = os.open(path, f, 0o644)
    os.close(fd)
    return "OK"


def fallocate(fd, length):
    """fallocate(2) mode 0 (os.posix_fallocate may emulate it with writes)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if libc.fallocate(fd, 0, 0, length) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def write_all_then_close(fd, data):
    try:
        n = os.write(fd, data)
    except OSError as e:
        try:
            os.close(fd)
        except OSError:
            pass
        raise e
    os.close(fd)
    return "OK %d" % n


def main(argv):
    op, a = argv[1], argv[2:]
    if op == "open":
        return do_open(a[0], a[1])
    if op == "truncate":
        os.truncate(a[0], int(a[1]))
        return "OK"
    if op == "ftruncate":
        fd = os.open(a[0], os.O_WRONLY)
        try:
            os.ftruncate(fd, int(a[1]))
        finally:
            os.close(fd)
        return "OK"
    if op == "unlink":
        os.unlink(a[0])
        return "OK"
    if op == "rmdir":
        os.rmdir(a[0])
        return "OK"
    if op == "mkdir":
        os.mkdir(a[0])
        return "OK"
    if op == "mknod":
        os.mknod(a[0], 0o644)
        return "OK"
    if op == "rename":
        os.rename(a[0], a[1])
        return "OK"
    if op == "link":
        os.link(a[0], a[1])
        return "OK"
    if op == "symlink":
        os.symlink(a[0], a[1])
        return "OK"
    if op == "setxattr":
        os.setxattr(a[0], a[1], a[2].encode())
        return "OK"
    if op in ("setxattr_create", "setxattr_replace"):
        flag = os.XATTR_CREATE if op == "setxattr_create" else os.XATTR_REPLACE
        os.setxattr(a[0], a[1], a[2].encode(), flag)
        return "OK"
    if op == "stat":
        st = os.stat(a[0])
        return "OK %o %d %d" % (st.st_mode & 0o7777, st.st_uid, st.st_gid)
    if op == "chmod":
        os.chmod(a[0], int(a[1], 8))
        return "OK"
    if op == "chown":
        os.chown(a[0], int(a[1]), int(a[2]))
        return "OK"
    if op == "fallocate":
        fd = os.open(a[0], os.O_WRONLY)
        try:
            fallocate(fd, int(a[1]))
        finally:
            os.close(fd)
        return "OK"
    if op == "getxattr":
        return "OK " + os.getxattr(a[0], a[1]).decode(errors="replace")
    if op == "removexattr":
        os.removexattr(a[0], a[1])
        return "OK"
    if op == "append":
        fd = os.open(a[0], os.O_WRONLY | os.O_APPEND)
        return write_all_then_close(fd, unescape(a[1]))
    if op == "appendall":
        fd = os.open(a[0], os.O_WRONLY | os.O_APPEND)
        data, done = b"x" * int(a[1]) + b"\n", 0
        try:
            while done < len(data):
                done += os.write(fd, data[done:])
        finally:
            os.close(fd)
        return "OK %d" % done
    if op == "appendlen":
        fd = os.open(a[0], os.O_WRONLY | os.O_APPEND)
        return write_all_then_close(fd, b"x" * int(a[1]) + b"\n")
    if op == "pwrite":
        fd = os.open(a[0], os.O_WRONLY)
        try:
            n = os.pwrite(fd, unescape(a[2]), int(a[1]))
        finally:
            os.close(fd)
        return "OK %d" % n
    if op == "pread":
        fd = os.open(a[0], os.O_RDONLY)
        try:
            b = os.pread(fd, int(a[2]), int(a[1]))
        finally:
            os.close(fd)
        return "OK %d %s" % (len(b), b.decode(errors="replace"))
    if op == "stale":
        fd = os.open(os.path.join(a[0], a[1]), os.O_WRONLY | os.O_APPEND)
        try:
            os.rmdir(a[0])
        except OSError as e:
            os.close(fd)
            return "RMDIR-FAILED " + name(e)
        return write_all_then_close(fd, unescape(a[2]))
    sys.exit("fsop.py: unknown op " + op)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    try:
        print(main(sys.argv))
    except OSError as e:
        print(name(e))
