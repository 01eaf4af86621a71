"""recs — the record specs and the one text form every client script prints.

A spec is a JSON list of records, each {"key": K, "value": V, "headers":
[[NAME, HV], ...], "ts": MS}; K, V and HV are hex strings or null, NAME is a
string, "headers" and "ts" may be left out.  The test writes a spec, a
producer script sends it, every consumer script prints what it read in the
canonical form below, and the test compares those texts byte for byte with
`python3 recs.py canon SPEC BASE`.

Canonical form, one line per record:
    OFFSET key=F value=F headers=[NAME=F,...][ ts=MS]
where F is "-" for null, "x" + hex for up to 512 bytes, and "#LEN:SHA256"
beyond (still exact, but keeps a diff readable); NAME is hex-encoded too.

    recs.py spec NAME           print a built-in spec (see SPECS)
    recs.py canon SPEC BASE [--ts]  the canonical lines a consumer must print
    recs.py file SPEC           the bytes the partition file must show
"""
import hashlib
import json
import random
import sys


def field(b):
    if b is None:
        return "-"
    b = bytes(b)
    if len(b) > 512:
        return "#%d:%s" % (len(b), hashlib.sha256(b).hexdigest())
    return "x" + b.hex()


def line(offset, key, value, headers, ts=None):
    """headers: a list of (name as str or bytes, value as bytes or None)."""
    hs = []
    for name, hv in headers or []:
        if isinstance(name, str):
            name = name.encode()
        hs.append("%s=%s" % (name.hex(), field(hv)))
    s = "%d key=%s value=%s headers=[%s]" % (offset, field(key), field(value), ",".join(hs))
    if ts is not None:
        s += " ts=%d" % ts
    return s


def unhex(h):
    return None if h is None else bytes.fromhex(h)


def load(path):
    """The spec at path as a list of (key, value, headers, ts) in bytes."""
    with open(path) as f:
        spec = json.load(f)
    out = []
    for r in spec:
        hs = [(n, unhex(v)) for n, v in r.get("headers", [])]
        out.append((unhex(r.get("key")), unhex(r.get("value")), hs, r.get("ts")))
    return out


def _rec(key, value, headers=(), ts=None):
    h = lambda b: None if b is None else (b.encode() if isinstance(b, str) else b).hex()
    r = {"key": h(key), "value": h(value), "headers": [[n, h(v)] for n, v in headers]}
    if ts is not None:
        r["ts"] = ts
    return r


def _tricky():
    """Values a line-oriented log finds hard, with keys and headers."""
    rnd = random.Random(20261201)
    big = bytes(rnd.getrandbits(8) for _ in range(200000))
    return [
        _rec("k-nl", "first line\nsecond line", [("h1", "v1")], ts=1600000000001),
        _rec(b"\x00\xff", b"\x00\xff\x00binary\xff\n\x00", [("bin", b"\x00\xff\x01")], ts=1600000000002),
        _rec("k-empty", "", [("empty-header", "")], ts=1600000000003),
        _rec("k-tombstone", None, [], ts=1600000000004),
        _rec(None, "no key, no headers", [], ts=1600000000005),
        _rec(None, "ends with newlines\n\n", [("null-header", None), ("dup", "a"), ("dup", "b")],
             ts=1600000000006),
        _rec("", "empty key", [("utf8-\u00e9", "\u00e9t\u00e9")], ts=1600000000007),
        _rec("k-big", big, [("size", "200000")], ts=1600000000008),
        _rec("k-crtab", "cr\r tab\t end", [], ts=1600000000009),
        _rec("k-last", None, [("after", "tombstone")], ts=1600000000010),
    ]


def _plain(n, tag):
    """n records with keys and headers, values that are ordinary lines."""
    return [_rec("%s-k%d" % (tag, i), "%s-v%d" % (tag, i), [("n", str(i)), ("by", tag)])
            for i in range(n)]


SPECS = {
    "tricky": _tricky,
    "kp-all": lambda: _plain(300, "kp-all"),
    "kp-one": lambda: _plain(300, "kp-one"),
    "kp-none": lambda: _plain(300, "kp-none"),
    "kjs": lambda: _plain(300, "kjs"),
}


def main(argv):
    if len(argv) >= 2 and argv[0] == "spec":
        json.dump(SPECS[argv[1]](), sys.stdout)
        sys.stdout.write("\n")
    elif len(argv) >= 3 and argv[0] == "canon":
        with_ts = "--ts" in argv[3:]
        for i, (k, v, hs, ts) in enumerate(load(argv[1])):
            print(line(int(argv[2]) + i, k, v, hs, ts if with_ts else None))
    elif len(argv) == 2 and argv[0] == "file":
        out = sys.stdout.buffer
        for k, v, hs, ts in load(argv[1]):
            out.write((v or b"") + b"\n")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
