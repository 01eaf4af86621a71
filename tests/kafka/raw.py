"""raw — bytes on the Kafka port that no client library would send.

    raw.py HOST:PORT apiversions
        one well-formed ApiVersions v0 request; print "corr=N err=E" and one
        "KEY MIN MAX" line per API advertised
    raw.py HOST:PORT KIND
        send KIND's bytes and wait (5 s) for the broker to close the
        connection; print "closed" (EOF or reset) or "open" (it did not)
      garbage       an HTTP request: its first 4 bytes read as a 1.2 GB size
      huge          a frame size of 0x7fffffff
      tiny          a frame size of 4 (below any request header)
      header        an 8-byte frame whose client id runs past its end
      body          Metadata v1 announcing 5 topics and carrying none
      unknown-api   api key 1000, version 0
      unknown-version  Metadata version 99
      answer-then-garbage  ApiVersions v0 then garbage in one write: the
                    answer must come back before the close (print "answered closed")
    raw.py HOST:PORT idempotent TOPIC PART
        an idempotent producer's batches as a retrying producer sends them
        (built by kafka-python's record batch builder): InitProducerId, then
        Produce v3 of batches A (seq 0, 3 records) and B (seq 3, 3 records),
        A again, B again, a gap (seq 10) and an overlap (seq 4); prints
        "producer ID EPOCH", then one line per Produce: "NAME err=E base=OFFSET"
    raw.py HOST:PORT batch TOPIC PART ID EPOCH SEQ N
        one such batch of producer ID/EPOCH: print "err=E base=OFFSET"
    raw.py HOST:PORT pipeline N
        N ApiVersions then N Metadata requests in one write, before reading
        anything (more than the broker keeps in flight): print "answered M in
        order" when all 2N answers came back by correlation id in order
    raw.py HOST:PORT truncated
        a frame announcing 100 bytes with only 10 of them, held open while a
        second connection's ApiVersions is answered (prints "served"), then
        this client disconnects (prints "left")
"""
import socket
import struct
import sys
import time


def request(api, version, corr, body=b"", client=b"raw"):
    hdr = struct.pack(">hhih", api, version, corr, len(client)) + client
    frame = hdr + body
    return struct.pack(">i", len(frame)) + frame


def connect(addr):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=5)
    return s


def read_exact(s, n):
    out = b""
    while len(out) < n:
        b = s.recv(n - len(out))
        if not b:
            raise EOFError("connection closed after %d of %d bytes" % (len(out), n))
        out += b
    return out


def read_answer(s):
    size = struct.unpack(">i", read_exact(s, 4))[0]
    return read_exact(s, size)


def api_versions(s, corr):
    s.sendall(request(18, 0, corr))
    a = read_answer(s)
    got_corr, err, n = struct.unpack(">ihi", a[:10])
    apis = [struct.unpack(">hhh", a[10 + 6 * i:16 + 6 * i]) for i in range(n)]
    return got_corr, err, apis


def wait_closed(s):
    """'closed' once the peer closed (EOF or reset) within 5 s, else 'open'."""
    deadline = time.time() + 5
    s.settimeout(0.5)
    while time.time() < deadline:
        try:
            if not s.recv(65536):
                return "closed"
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return "closed"
    return "open"


def init_producer_id(s):
    s.sendall(request(22, 0, 1, struct.pack(">hi", -1, 60000)))
    a = read_answer(s)
    corr, throttle, err, pid, epoch = struct.unpack(">iihqh", a[:20])
    if err:
        sys.exit("raw.py: InitProducerId: error %d" % err)
    return pid, epoch


def produce_batch(s, topic, part, pid, epoch, seq, n, corr):
    """One Produce v3 (acks -1) of an idempotent batch: values idem-seq-SEQ..;
    returns (error, base offset)."""
    from kafka.protocol.produce import ProduceRequest_v3, ProduceResponse_v3
    from kafka.record.default_records import DefaultRecordBatchBuilder

    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=pid, producer_epoch=epoch,
                                  base_sequence=seq, batch_size=1 << 20)
    for i in range(n):
        b.append(i, timestamp=None, key=None, value=b"idem-seq-%d" % (seq + i), headers=[])
    req = ProduceRequest_v3(transactional_id=None, required_acks=-1, timeout=10000,
                            topics=[(topic, [(part, bytes(b.build()))])])
    body = req.encode()  # (encode holds its struct weakly: keep req alive)
    s.sendall(request(0, 3, corr, body))
    resp = ProduceResponse_v3.decode(read_answer(s)[4:])
    _, err, base, _ = resp.topics[0][1][0]
    return err, base


def idempotent(addr, topic, part):
    s = connect(addr)
    pid, epoch = init_producer_id(s)
    print("producer %d %d" % (pid, epoch))
    for corr, (name, seq, n) in enumerate([("A", 0, 3), ("B", 3, 3), ("A-again", 0, 3),
                                           ("B-again", 3, 3), ("gap", 10, 3), ("overlap", 4, 3)]):
        err, base = produce_batch(s, topic, part, pid, epoch, seq, n, 100 + corr)
        print("%s err=%d base=%d" % (name, err, base))


KINDS = {
    "garbage": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "huge": struct.pack(">I", 0x7FFFFFFF) + b"\0" * 64,
    "tiny": struct.pack(">i", 4) + b"\0\x12\0\0",
    "header": struct.pack(">i", 8) + struct.pack(">hhih", 18, 0, 7, 100),
    "body": request(3, 1, 8, struct.pack(">i", 5)),
    "unknown-api": request(1000, 0, 9),
    "unknown-version": request(3, 99, 10, struct.pack(">i", -1)),
}


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    addr, kind = argv[:2]
    if kind == "idempotent" and len(argv) == 4:
        idempotent(addr, argv[2], int(argv[3]))
    elif kind == "batch" and len(argv) == 8:
        s = connect(addr)
        print("err=%d base=%d" % produce_batch(s, argv[2], int(argv[3]), *map(int, argv[4:8]), 1))
    elif kind == "pipeline" and len(argv) == 3:
        n = int(argv[2])
        s = connect(addr)
        meta = struct.pack(">ih", 1, 1) + b"t"
        s.sendall(b"".join(request(18, 0, i) for i in range(n)) +
                  b"".join(request(3, 1, n + i, meta) for i in range(n)))
        in_order = sum(struct.unpack(">i", read_answer(s)[:4])[0] == i for i in range(2 * n))
        print("answered %d in order" % in_order)
    elif len(argv) != 2:
        sys.exit(__doc__)
    elif kind == "apiversions":
        s = connect(addr)
        corr, err, apis = api_versions(s, 4242)
        print("corr=%d err=%d" % (corr, err))
        for key, lo, hi in apis:
            print(key, lo, hi)
    elif kind == "truncated":
        s = connect(addr)
        s.sendall(struct.pack(">i", 100) + b"\0\x12\0\0\0\0\0\x01\0\0")
        time.sleep(0.2)
        other = connect(addr)
        corr, err, _ = api_versions(other, 77)
        if corr == 77 and err == 0:
            print("served")
        other.close()
        s.close()
        print("left")
    elif kind == "answer-then-garbage":
        s = connect(addr)
        s.sendall(request(18, 0, 55) + KINDS["garbage"])
        a = read_answer(s)
        ok = struct.unpack(">ih", a[:6]) == (55, 0)
        print(("answered " if ok else "not-answered ") + wait_closed(s))
    elif kind in KINDS:
        s = connect(addr)
        try:
            s.sendall(KINDS[kind])
        except (ConnectionResetError, BrokenPipeError):
            print("closed")
            return
        print(wait_closed(s))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
