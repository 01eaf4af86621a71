#!/usr/bin/env python3
"""holder.py FILE — keep FILE open (O_WRONLY|O_APPEND) and write on command.

Reads commands from stdin, one per line, and answers each with one line on
stdout ("OK n" / "OK" or the errno name):
  w TEXT   one write(2) of TEXT (Python escapes such as \\n are decoded)
  c        close(2) the file (the answer comes after close() returned)
Used as a bash coprocess so that a test can check what readers see while a
partial line is held, at exact points between writes. (A shell `exec 3>>p;
printf ab >&3` is not equivalent: every such redirection dup()s and closes the
fd, and each close(2) sends FUSE a FLUSH.)"""
import errno
import os
import sys

fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
for line in sys.stdin:
    cmd, _, arg = line.rstrip("\n").partition(" ")
    try:
        if cmd == "w":
            n = os.write(fd, arg.encode().decode("unicode_escape").encode("latin-1"))
            print("OK %d" % n, flush=True)
        elif cmd == "c":
            os.close(fd)
            print("OK", flush=True)
            break
        else:
            print("BADCMD", flush=True)
    except OSError as e:
        print(errno.errorcode.get(e.errno, str(e.errno)), flush=True)
