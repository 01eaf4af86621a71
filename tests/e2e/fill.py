#!/usr/bin/env python3
"""fill.py FILE ACKFILE [MAX_BYTES] — append 1000-byte records, four per
write(2), until a write fails; every batch whose write() returned the full
length is appended to ACKFILE (a local file), so ACKFILE holds exactly the
acknowledged bytes. Prints the errno name of the failing write (or NOFULL if
MAX_BYTES were written without error, SHORT n for a short write), then the
outcome of close() as "CLOSE OK" or "CLOSE <errno>"."""
import errno
import os
import sys

path, ackpath = sys.argv[1], sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 1 << 30
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
i = 0
done = 0
with open(ackpath, "ab") as ack:
    while True:
        recs = b"".join(b"%08d %s\n" % (i + k, b"z" * 990) for k in range(4))
        try:
            n = os.write(fd, recs)
        except OSError as e:
            print(errno.errorcode.get(e.errno, e.errno))
            break
        if n != len(recs):
            print("SHORT %d" % n)
            break
        ack.write(recs)
        ack.flush()
        i += 4
        done += n
        if done >= limit:
            print("NOFULL")
            break
try:
    os.close(fd)
    print("CLOSE OK")
except OSError as e:
    print("CLOSE " + errno.errorcode.get(e.errno, str(e.errno)))
