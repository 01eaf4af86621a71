#!/usr/bin/env python3
"""verify_log.py — check partition files written by ackwriter or shell writers.

  verify_log.py [--acks DIR] [--expect TAG=N]... [--other-ok] FILE...

Every line of every FILE must be a record "TAG SEQ LEN PAYLOAD" where PAYLOAD
is LEN copies of chr(ord('a') + SEQ % 26) (see ackwriter.c). Checks:
  - no torn or garbled line (format, length and letter all match), and every
    file ends with '\\n' (no partial record visible);
  - per TAG, the sequence numbers seen, in file order, are exactly 0, 1, 2, ...
    (in order, exactly once, no gaps);
  - --acks DIR: for every DIR/TAG.ack, the highest acknowledged SEQ (last
    line) is present, i.e. nothing acknowledged was lost;
  - --expect TAG=N: TAG has exactly N records.
--other-ok tolerates lines that do not look like records at all (e.g. records
written by other tests into the same file); they are counted and ignored.
Prints a one-line summary; exits 1 listing the first problems found.
"""
import argparse
import os
import re
import sys

REC = re.compile(rb"^(\S+) (\d+) (\d+) ([a-z]*)$")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--acks")
    ap.add_argument("--expect", action="append", default=[])
    ap.add_argument("--other-ok", action="store_true")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()

    errors = []
    last = {}      # tag -> last seq seen
    count = {}     # tag -> records seen
    where = {}     # tag -> file
    other = 0
    total = 0
    for path in a.files:
        with open(path, "rb") as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            errors.append("%s: ends with a partial record %r" % (path, data[-60:]))
        lines = data.split(b"\n")
        if lines and lines[-1] == b"":
            lines.pop()
        for no, line in enumerate(lines, 1):
            m = REC.match(line)
            if not m:
                if a.other_ok and not re.match(rb"^\S+ \d+ ", line):
                    other += 1
                    continue
                errors.append("%s:%d: garbled line %r" % (path, no, line[:120]))
                continue
            tag, seq, ln, payload = m.group(1).decode(), int(m.group(2)), int(m.group(3)), m.group(4)
            if len(payload) != ln or payload != bytes([97 + seq % 26]) * ln:
                errors.append("%s:%d: torn/garbled record %r" % (path, no, line[:120]))
                continue
            total += 1
            want = last.get(tag, -1) + 1
            if seq != want:
                kind = "duplicate/reordered" if seq < want else "gap (lost records)"
                errors.append("%s:%d: %s: tag %s expected seq %d, seen %d"
                              % (path, no, kind, tag, want, seq))
            last[tag] = max(seq, last.get(tag, -1))
            count[tag] = count.get(tag, 0) + 1
            if where.setdefault(tag, path) != path:
                errors.append("tag %s appears in %s and %s" % (tag, where[tag], path))

    if a.acks:
        for fn in sorted(os.listdir(a.acks)):
            if not fn.endswith(".ack"):
                continue
            tag = fn[:-4]
            with open(os.path.join(a.acks, fn)) as f:
                acks = f.read().split()
            if not acks:
                continue
            acked = int(acks[-1])
            if last.get(tag, -1) < acked:
                errors.append("LOST acknowledged records: tag %s acked up to seq %d, "
                              "file has up to %d" % (tag, acked, last.get(tag, -1)))
    for e in a.expect:
        tag, n = e.split("=")
        if count.get(tag, 0) != int(n):
            errors.append("tag %s: expected %s records, seen %d" % (tag, n, count.get(tag, 0)))

    print("verify_log: %d records, %d tags, %d other lines, %d problems"
          % (total, len(count), other, len(errors)))
    for e in errors[:20]:
        print("  " + e)
    if len(errors) > 20:
        print("  ... %d more" % (len(errors) - 20))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
