#!/usr/bin/env python3
"""synth.py — synthetic chaos runs for check_test.sh: a clean history, or one
with a single planted anomaly, written as a RUNDIR that check.py reads.

  synth.py OUTDIR [--anomaly NAME] [--attempts N] [--seed S]

The clean history: nodes n1 n2 n3; partition t/0 written by w1 (batch 1, 48-
byte records) and w2 (batch 3, 64 bytes, one failed open first), t/1 by w3
(batch 2, 48 bytes). Attempts overlap in time; each has an invoke time, a
commit time and a completion time (t_inv < t_commit < t_done), and the file
holds the committed records in commit order, so real-time order holds.
Outcomes: mostly ok; some err 110 that committed anyway or not (unknown),
err 22 (failed, never committed), short writes (unknown, not committed), and
each writer's last attempt has no C line (committed). Readers: r1 (n1) reads
t/0 in one session with a partial tail seen once, r2 (n2) reads t/0 with a
failed read and a second session (V re-read), r3 (n3) reads t/1 with a
second session that starts BEHIND. Readers are derived from the final files,
so they are consistent unless an anomaly says otherwise.

Anomalies (NAME: what is planted; the checks it should trip):
  lost          an ok record missing from t/0            lost, unseen
  duplicate     an ok record of t/0 twice                duplicate
  failed        an err-22 record present in t/0          failed-present
  identical     one byte of n3's t/0 changed             identical
  torn          a cut record in t/0                      wellformed
  unknown       a valid record of a wid nobody runs      known
  reorder       two ok records of w1 swapped             order
  realtime      a w2 write moved before a w1 write that  order
                completed before it was invoked
  read-differs  two R records of r1 swapped              read-consistent
  shrink        a SHRINK line in r1's session            read-monotonic
  skip          one R line missing from r1               read-monotonic
  unseen        r1 and r2 stop before the last records   unseen
  badlog        a garbage line in w1's log               (exit 2)
"""
import argparse
import os
import random

BASE_T = 1_700_000_000_000_000_000


def record(wid, seq, size):
    head = b"W%d S%d K%04x " % (wid, seq, (wid * 1000003 + seq * 7 + size) % 65536)
    return head + b"x" * (size - 1 - len(head)) + b"\n"


class Attempt:
    def __init__(self, wid, first, count, t_inv, t_commit, t_done, result, committed):
        self.wid, self.first, self.count = wid, first, count
        self.t_inv, self.t_commit, self.t_done = t_inv, t_commit, t_done
        self.result = result        # "ok 0", "err 110", ..., None for no C line
        self.committed = committed


def simulate(rng, attempts):
    writers = {1: ("t/0", "n1", 1, 48), 2: ("t/0", "n2", 3, 64), 3: ("t/1", "n3", 2, 48)}
    per = {wid: [] for wid in writers}
    for wid, (_, _, batch, _) in writers.items():
        t, seq = BASE_T + rng.randrange(1000), 0
        n = attempts // len(writers)
        for k in range(n):
            t_inv = t
            t_commit = t_inv + rng.randrange(10, 5000)
            t_done = t_commit + rng.randrange(10, 5000)
            x = rng.random()
            if k == n - 1:
                result, committed = None, True
            elif x < 0.80:
                result, committed = "ok 0", True
            elif x < 0.85:
                result, committed = "err 110", True
            elif x < 0.90:
                result, committed = "err 110", False
            elif x < 0.95:
                result, committed = "err 22", False
            else:
                result, committed = "short %d" % rng.randrange(0, batch * writers[wid][3]), False
            # Force one of each kind early so every anomaly has material.
            if k < 5:
                result, committed = [("ok 0", True), ("err 22", False), ("err 110", False),
                                     ("err 110", True), ("ok 0", True)][k]
            per[wid].append(Attempt(wid, seq, batch, t_inv, t_commit, t_done, result,
                                    committed))
            seq += batch
            t = t_done + rng.randrange(1, 3000)
    return writers, per


def write_writer_log(path, wid, spec, atts, garbage=False):
    part, node, batch, size = spec
    with open(path, "wb") as f:
        f.write(b"H %d /mnt/%s/%s %d %d\n" % (wid, node.encode(), part.encode(), batch, size))
        if wid == 2:
            f.write(b"E %d open 107\n" % (atts[0].t_inv - 100))
        for i, a in enumerate(atts):
            f.write(b"I %d %d %d\n" % (a.t_inv, a.first, a.count))
            if garbage and i == 1:
                f.write(b"C %d %d zz ok 0\n" % (a.t_done, a.first))
            if a.result is not None:
                f.write(b"C %d %d %d %s\n" % (a.t_done, a.first, a.count, a.result.encode()))


def reader_log(rid, fname, data, mode, rng, start_t):
    """Follows data (a final file) like creader would. mode: 'plain', 'reopen'
    or 'behind'. Returns the lines, so an anomaly can edit them."""
    lines = [b"H %d %s" % (rid, fname.encode())]
    t = start_t
    lines.append(b"O %d 1" % t)
    pos, session = 0, 1
    recs = data.split(b"\n")[:-1]
    switch = len(recs) // 2
    partial_at = len(recs) // 3
    for i, rec in enumerate(recs):
        t += rng.randrange(1, 1000)
        if mode == "plain" and i == partial_at:
            lines.append(b"P %d %d %d" % (t, pos, 17))
        if mode != "plain" and i == switch:
            lines.append(b"E %d read 107" % t)
            lines.append(b"E %d open 107" % (t + 1))
            session += 1
            lines.append(b"O %d %d" % (t + 2, session))
            if mode == "behind":
                lines.append(b"BEHIND %d %d %d" % (t + 3, pos // 2, pos))
            start = max(0, pos - 4096)
            off = start
            if start > 0:
                off = data.index(b"\n", start) + 1
            while off < pos:
                nl = data.index(b"\n", off)
                lines.append(b"V %d %d %d %s" % (t + 4, off, nl + 1 - off, data[off:nl]))
                off = nl + 1
        lines.append(b"R %d %d %d %s" % (t, pos, len(rec) + 1, rec))
        pos += len(rec) + 1
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--anomaly", default="none")
    ap.add_argument("--attempts", type=int, default=600)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    writers, per = simulate(rng, a.attempts)
    an = a.anomaly

    # Records in commit order per partition: [commit time, bytes, wid, seq].
    files = {"t/0": [], "t/1": []}
    for wid, atts in per.items():
        part, _, _, size = writers[wid]
        for at in atts:
            if at.committed or (an == "failed" and wid == 1 and at.result == "err 22"
                                and at.first == per[1][1].first):
                for s in range(at.first, at.first + at.count):
                    files[part].append([at.t_commit, record(wid, s, size), wid, s])
    for recs in files.values():
        recs.sort(key=lambda r: (r[0], r[2], r[3]))
    t0 = files["t/0"]

    def w1_ok_index(nth):
        """Index in t/0 of the nth ok record of w1 (batch 1)."""
        oks = [i for i, r in enumerate(t0) if r[2] == 1 and
               per[1][r[3]].result == "ok 0"]
        return oks[nth]

    if an == "lost":
        del t0[w1_ok_index(10)]
    elif an == "duplicate":
        t0.append(list(t0[w1_ok_index(10)]))
    elif an == "torn":
        # an unknown, uncommitted w1 value shows up cut short
        at = per[1][2]
        assert at.result == "err 110" and not at.committed
        t0.append([at.t_commit, record(1, at.first, 48)[:20] + b"\n", 1, at.first])
        t0.sort(key=lambda r: r[0])
    elif an == "unknown":
        t0.insert(len(t0) // 2, [0, record(9, 5, 48), 9, 5])
    elif an == "reorder":
        i, j = w1_ok_index(10), w1_ok_index(20)
        t0[i], t0[j] = t0[j], t0[i]
    elif an == "realtime":
        # A: an ok w1 write; B: the next w2 write in the file after A, invoked
        # after A completed. B moves to just before A: w2's own order stays
        # intact, only real time is broken (across writers).
        for ia in range(w1_ok_index(10), len(t0)):
            if t0[ia][2] != 1 or per[1][t0[ia][3]].result != "ok 0":
                continue
            a_at = per[1][t0[ia][3]]
            ib = next((i for i in range(ia + 1, len(t0)) if t0[i][2] == 2), None)
            if ib is None:
                continue
            b_at = per[2][t0[ib][3] // 3]
            if b_at.t_inv > a_at.t_done:
                break
        else:
            raise SystemExit("synth.py: no pair for realtime")
        b_recs = t0[ib:ib + b_at.count]
        assert all(r[2] == 2 for r in b_recs)
        del t0[ib:ib + b_at.count]
        t0[ia:ia] = b_recs

    datas = {p: b"".join(r[1] for r in recs) for p, recs in files.items()}
    d = a.outdir
    for sub in ("writers", "readers"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    for node in ("n1", "n2", "n3"):
        for p, data in datas.items():
            topic, num = p.split("/")
            os.makedirs(os.path.join(d, "final", node, topic), exist_ok=True)
            if an == "identical" and node == "n3" and p == "t/0":
                at = len(data) // 2
                at = data.index(b"x", at)
                data = data[:at] + b"y" + data[at + 1:]
            with open(os.path.join(d, "final", node, topic, num), "wb") as f:
                f.write(data)
    with open(os.path.join(d, "writers-map.txt"), "w") as f:
        for wid, (p, node, _, _) in writers.items():
            f.write("%d %s %s\n" % (wid, p.replace("/", " "), node))
            write_writer_log(os.path.join(d, "writers", "w%d.log" % wid), wid,
                             writers[wid], per[wid], garbage=(an == "badlog" and wid == 1))

    readers = {1: ("t/0", "n1", "plain"), 2: ("t/0", "n2", "reopen"), 3: ("t/1", "n3", "behind")}
    logs = {}
    for rid, (p, node, mode) in readers.items():
        logs[rid] = reader_log(rid, "/mnt/%s/%s" % (node, p), datas[p], mode, rng,
                               BASE_T + 10)
    r1 = logs[1]
    rpos = [i for i, ln in enumerate(r1) if ln.startswith(b"R ")]
    if an == "read-differs":
        # two R lines of 48-byte w1 records: swap their record fields
        w1 = [i for i in rpos if b" W1 S" in r1[i]]
        i, j = w1[5], w1[15]
        hi, ri = r1[i].split(b" ", 4), r1[j].split(b" ", 4)
        hi[4], ri[4] = ri[4], hi[4]
        r1[i], r1[j] = b" ".join(hi), b" ".join(ri)
    elif an == "shrink":
        i = rpos[len(rpos) // 2]
        pos = int(r1[i].split(b" ")[2])
        r1.insert(i, b"SHRINK %d %d %d" % (BASE_T + 20, pos + 480, pos))
    elif an == "skip":
        del r1[rpos[len(rpos) // 2]]
    elif an == "unseen":
        # both readers of t/0 stop before the last 20 records (some are ok)
        for rid in (1, 2):
            rs = [i for i, ln in enumerate(logs[rid]) if ln.startswith(b"R ")]
            del logs[rid][rs[-20]:]
    with open(os.path.join(d, "readers-map.txt"), "w") as f:
        for rid, (p, node, _) in readers.items():
            f.write("%d %s %s\n" % (rid, p.replace("/", " "), node))
            with open(os.path.join(d, "readers", "r%d.log" % rid), "wb") as lf:
                lf.write(b"".join(ln + b"\n" for ln in logs[rid]))


if __name__ == "__main__":
    main()
