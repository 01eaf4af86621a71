#!/usr/bin/env python3
"""check.py — the chaos harness's checker: judges one run from its logs.

  check.py RUNDIR [--definite-errnos 22,90,27,36] [--context 5]

RUNDIR (written by tests/chaos/run.sh):
  writers/*.log      cwriter logs   (H, I, C, E lines; see cwriter.c)
  readers/*.log      creader logs   (H, O, E, R, V, P, SHRINK, BEHIND; see creader.c)
  final/<node>/<topic>/<partition>  each partition file as every node's mount
                     showed it once the cluster healed and converged
  writers-map.txt, readers-map.txt  "<wid|rid> <topic> <partition> <node>" per
                     line ('#' comments and blank lines allowed)

A value is (wid, seq), one record "W<wid> S<seq> K<check> x...x\\n" of exactly
the writer's RECSIZE bytes with check = (wid*1000003 + seq*7 + RECSIZE) % 65536.
Each value an I line invoked is
  ok       its C line says ok;
  failed   its C line says err with an errno in --definite-errnos (the
           daemon refused it before it could be stored);
  unknown  anything else: another errno, a short write, no C line at all.

Every partition is judged on its reference copy: the bytes most nodes hold
(ties: the first node in name order); "identical" reports the other copies.
Checks, each with its count of violations:
  identical        every node's copy of a partition has the same bytes
  wellformed       every line of a reference copy, and every R/V record, is a
                   valid record (a file ending without newline: a torn tail)
  known            every record was invoked by a writer of that partition
                   (its wid, a seq it logged an I for, its RECSIZE)
  duplicate        no value twice in a partition, nor in two partitions
  lost             every ok value is in its partition
  failed-present   no failed value is anywhere
  order            per writer, seq increases in file order; the records of one
                   write are adjacent; and a write that completed ok before
                   another write was invoked (by any writer of the partition,
                   by the CLOCK_REALTIME of the logs) comes first in the file
                   (the first occurrence of each value counts)
  read-consistent  every R and V record equals the reference bytes at its
                   position (and lies within them)
  read-monotonic   no SHRINK; R positions are contiguous from 0 (each at the
                   previous position + length; creader keeps its position
                   across sessions, so this holds across sessions too)
  unseen           every ok value was read (an R line) by a reader of its
                   partition (a partition without reader is not checked: noted)
Prints "check <name>: <N> violations" per check with up to 10 examples each
(the writer's I/C lines, the readers' lines at that position, the reference
records around it with byte offsets), the totals, and last "<P> passed, <F>
failed". Exit 0 iff every check passed, 1 otherwise, 2 on bad input (the
file and line are named).
"""
import argparse
import bisect
import gc
import os
import re
import sys
from array import array
from functools import partial

CHECKS = ["identical", "wellformed", "known", "duplicate", "lost", "failed-present",
          "order", "read-consistent", "read-monotonic", "unseen"]
MAX_EXAMPLES = 10
OK, FAILED, UNKNOWN = 0, 1, 2

# Numbers in records are canonical decimal, so one value has one spelling.
REC_RE = re.compile(rb"W(0|[1-9][0-9]{0,19}) S(0|[1-9][0-9]{0,19}) K([0-9a-f]{4}) x*")
# Log lines (fullmatch; in a bytes pattern \d is ASCII only).
N = rb"(\d{1,20})"
I_RE = re.compile(rb"I " + N + b" " + N + b" " + N)
C_RE = re.compile(rb"C " + N + b" " + N + b" " + N + rb" (ok|err|short) " + N)
E_RE = re.compile(rb"E " + N + rb" open " + N)
RV_RE = re.compile(rb"([RV]) " + N + b" " + N + b" " + N + b" ")


class BadInput(Exception):
    def __init__(self, where, msg):
        super().__init__("%s: %s" % (where, msg))


def record_check(wid, seq, recsize):
    return (wid * 1000003 + seq * 7 + recsize) % 65536


def parse_record(rec, recsizes):
    """(wid, seq) if rec (a line without its newline) is a valid record of one
    of the lengths in recsizes, else None."""
    m = REC_RE.fullmatch(rec)
    if m is None:
        return None
    size = len(rec) + 1
    if size not in recsizes:
        return None
    wid, seq = int(m.group(1)), int(m.group(2))
    if record_check(wid, seq, size) != int(m.group(3), 16):
        return None
    return wid, seq


def num(tok, where, what, lo=0):
    """A non-negative decimal token as int, at least lo."""
    if not tok.isdigit() or len(tok) > 20:
        raise BadInput(where, "%s: not a number: %r" % (what, tok[:40]))
    v = int(tok)
    if v < lo:
        raise BadInput(where, "%s: %d is below %d" % (what, v, lo))
    return v


def read_lines(path):
    """The file's lines (bytes, without newlines); a missing final newline is
    bad input for a log."""
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        raise BadInput("%s:%d" % (path, data.count(b"\n") + 1), "last line has no newline")
    lines = data.split(b"\n")
    lines.pop()
    return lines


# ---- inputs ------------------------------------------------------------------

def parse_map(path):
    """id -> (partition "topic/partition", node)."""
    if not os.path.isfile(path):
        raise BadInput(path, "missing")
    out = {}
    for no, line in enumerate(read_lines(path), 1):
        where = "%s:%d" % (path, no)
        line = line.strip()
        if not line or line.startswith(b"#"):
            continue
        tok = line.split()
        if len(tok) != 4:
            raise BadInput(where, "want '<id> <topic> <partition> <node>', got %r" % line[:80])
        ident = num(tok[0], where, "id")
        if ident in out:
            raise BadInput(where, "id %d listed twice" % ident)
        try:
            topic, part, node = (t.decode() for t in tok[1:])
        except UnicodeDecodeError:
            raise BadInput(where, "not UTF-8") from None
        if "/" in topic or "/" in part or "/" in node:
            raise BadInput(where, "'/' in a name")
        out[ident] = ("%s/%s" % (topic, part), node)
    return out


class Writer:
    """One cwriter log. Attempt k covers seqs [firsts[k], firsts[k] + counts[k])."""

    def __init__(self, path):
        self.path = path
        self.wid = None
        self.file = None
        self.batch = self.recsize = 0
        self.firsts = []
        self.counts = []
        self.status = []
        self.t_inv = []
        self.t_done = []    # -1 if no C line
        self.i_line = []    # line numbers, for the examples
        self.c_line = []    # 0 if no C line
        self.next_seq = 0
        self.partition = self.node = None

    def parse(self, definite):
        lines = read_lines(self.path)
        if not lines:
            raise BadInput("%s:1" % self.path, "empty log (no H line)")
        tok = lines[0].split(b" ")
        where = "%s:1" % self.path
        if tok[0] != b"H" or len(tok) < 5:
            raise BadInput(where, "want 'H <wid> <FILE> <batch> <recsize>', got %r"
                           % lines[0][:80])
        self.wid = num(tok[1], where, "wid")
        self.file = b" ".join(tok[2:-2]).decode(errors="replace")
        self.batch = num(tok[-2], where, "batch", 1)
        self.recsize = num(tok[-1], where, "recsize", 32)
        i_match, c_match, e_match = I_RE.fullmatch, C_RE.fullmatch, E_RE.fullmatch
        pending = False
        for no, line in enumerate(lines[1:], 2):
            kind = line[:2]
            if kind == b"I ":
                m = i_match(line)
                if m is None:
                    raise BadInput("%s:%d" % (self.path, no), "want 'I <t_ns> <first_seq> <count>',"
                                   " got %r" % line[:80])
                t, first, count = int(m.group(1)), int(m.group(2)), int(m.group(3))
                if pending:
                    raise BadInput("%s:%d" % (self.path, no),
                                   "I line while the previous I has no C line")
                if first != self.next_seq or count == 0:
                    raise BadInput("%s:%d" % (self.path, no), "I %d %d, expected I %d <count >= 1>"
                                   % (first, count, self.next_seq))
                self.firsts.append(first)
                self.counts.append(count)
                self.status.append(UNKNOWN)
                self.t_inv.append(t)
                self.t_done.append(-1)
                self.i_line.append(no)
                self.c_line.append(0)
                self.next_seq += count
                pending = True
            elif kind == b"C ":
                m = c_match(line)
                if m is None:
                    raise BadInput("%s:%d" % (self.path, no), "want 'C <t_ns> <first_seq> <count> "
                                   "<ok|err|short> <n>', got %r" % line[:80])
                t, first, count = int(m.group(1)), int(m.group(2)), int(m.group(3))
                what, val = m.group(4), int(m.group(5))
                where = "%s:%d" % (self.path, no)
                if not pending:
                    raise BadInput(where, "C line without its I line")
                if first != self.firsts[-1] or count != self.counts[-1]:
                    raise BadInput(where, "C %d %d does not match I %d %d"
                                   % (first, count, self.firsts[-1], self.counts[-1]))
                if what == b"ok":
                    if val != 0:
                        raise BadInput(where, "ok with %d" % val)
                    st = OK
                elif what == b"err":
                    if val == 0:
                        raise BadInput(where, "err 0")
                    st = FAILED if val in definite else UNKNOWN
                else:
                    if val >= count * self.recsize:
                        raise BadInput(where, "short write of %d bytes is not short" % val)
                    st = UNKNOWN
                self.status[-1] = st
                self.t_done[-1] = t
                self.c_line[-1] = no
                pending = False
            elif e_match(line) is None:
                raise BadInput("%s:%d" % (self.path, no), "not an I, C or 'E <t_ns> open <errno>' "
                               "line: %r" % line[:80])
        self.uniform = all(c == self.batch for c in self.counts)

    def attempt_of(self, seq):
        """Index of the attempt that invoked seq, or None."""
        if seq >= self.next_seq:
            return None
        if self.uniform:    # every attempt BATCH records, as cwriter does
            return seq // self.batch
        return bisect.bisect_right(self.firsts, seq) - 1

    def values(self, status):
        for k in range(len(self.firsts)):
            if self.status[k] == status:
                yield from range(self.firsts[k], self.firsts[k] + self.counts[k])


class Reader:
    """One creader log, checked while it is read (its lines are not kept)."""

    def __init__(self, path):
        self.path = path
        self.rid = None
        self.file = None
        self.partition = self.node = None
        self.by_pos = None          # pos -> [line numbers of R/V], built for the examples
        self.reads = 0
        self.sessions = self.behind = 0


# ---- the checker -----------------------------------------------------------------

class Check:
    def __init__(self, name):
        self.name = name
        self.count = 0
        self.examples = []

    def add(self, msg, context=None):
        """Counts a violation. context() gives its lines; it is called for the
        first MAX_EXAMPLES only, at report time, once every log is loaded (so
        it must bind what it needs: functools.partial or default arguments)."""
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((msg, context))


class Partition:
    """One partition's reference copy and what is known about its lines."""

    def __init__(self, name, data, ref_node):
        self.name = name
        self.data = data
        self.ref_node = ref_node
        self.lines = data.split(b"\n")
        self.torn_tail = self.lines.pop() != b""   # bytes after the last newline
        self.starts = array("q", [0])
        pos = 0
        for ln in self.lines:
            pos += len(ln) + 1
            self.starts.append(pos)
        self.keys = []          # per line: (wid, seq) or None
        self.first = {}         # (wid, seq) -> index of its first line
        self.start_index = None  # position -> line index, built on demand
        self.writers = []
        self.readers = []
        self.runs = {}          # wid -> ([seq], [line index]): its known values in file order
        self.seen = bytearray(len(self.lines))  # per line: some R line read it
        self.seen_elsewhere = set()             # values read that are not in this copy

    def line_at(self, pos):
        """The index of the line starting at pos, or None."""
        if self.start_index is None:    # built on first use
            self.start_index = {p: i for i, p in enumerate(self.starts[:-1])}
        return self.start_index.get(pos)


class Run:
    def __init__(self, rundir, definite, context):
        self.dir = rundir
        self.definite = definite
        self.context = context
        self.checks = {n: Check(n) for n in CHECKS}
        self.notes = []
        self.writers = {}
        self.parts = {}
        self.copies = {}    # partition -> {node: path}
        self.nodes = []
        self.log_cache = {}

    # -- loading --

    def load(self):
        d = self.dir
        if not os.path.isdir(d):
            raise BadInput(d, "not a directory")
        for sub in ("writers", "readers", "final"):
            if not os.path.isdir(os.path.join(d, sub)):
                raise BadInput(os.path.join(d, sub), "missing directory")
        wmap = parse_map(os.path.join(d, "writers-map.txt"))
        rmap = parse_map(os.path.join(d, "readers-map.txt"))

        for name in sorted(os.listdir(os.path.join(d, "writers"))):
            if not name.endswith(".log"):
                continue
            w = Writer(os.path.join(d, "writers", name))
            w.parse(self.definite)
            if w.wid in self.writers:
                raise BadInput("%s:1" % w.path, "wid %d also in %s"
                               % (w.wid, self.writers[w.wid].path))
            if w.wid not in wmap:
                raise BadInput("%s:1" % w.path, "wid %d is not in writers-map.txt" % w.wid)
            w.partition, w.node = wmap[w.wid]
            self.writers[w.wid] = w
        if not self.writers:
            raise BadInput(os.path.join(d, "writers"), "no writer logs")
        for wid in sorted(set(wmap) - set(self.writers)):
            self.notes.append("writer %d is in writers-map.txt but has no log" % wid)
        self.recsizes = {w.recsize for w in self.writers.values()}

        final = os.path.join(d, "final")
        for node in sorted(os.listdir(final), key=node_key):
            nd = os.path.join(final, node)
            if not os.path.isdir(nd):
                continue
            self.nodes.append(node)
            for topic in sorted(os.listdir(nd)):
                td = os.path.join(nd, topic)
                if not os.path.isdir(td):
                    continue
                for part in sorted(os.listdir(td)):
                    p = os.path.join(td, part)
                    if os.path.isfile(p):
                        self.copies.setdefault("%s/%s" % (topic, part), {})[node] = p
        for w in self.writers.values():
            if w.partition not in self.copies:
                raise BadInput("%s:1" % w.path, "partition %s has no copy under final/"
                               % w.partition)

        self.load_partitions()
        for w in self.writers.values():
            self.parts[w.partition].writers.append(w)

        self.rmap = rmap
        self.reader_paths = [os.path.join(d, "readers", n)
                             for n in sorted(os.listdir(os.path.join(d, "readers")))
                             if n.endswith(".log")]

    def load_partitions(self):
        """Picks each partition's reference copy and checks 'identical'."""
        chk = self.checks["identical"]
        for name in sorted(self.copies):
            copies = self.copies[name]
            datas = {}
            for node, path in copies.items():
                with open(path, "rb") as f:
                    datas[node] = f.read()
            votes = {}
            for node in sorted(datas, key=node_key):
                votes.setdefault(datas[node], []).append(node)
            ref_data, ref_nodes = max(votes.items(), key=lambda kv: len(kv[1]))
            # max keeps the first of equal counts: the group of the first node
            ref_node = ref_nodes[0]
            part = Partition(name, ref_data, ref_node)
            self.parts[name] = part
            for node in self.nodes:
                if node not in datas:
                    chk.add("%s: node %s has no copy (node %s has %d bytes)"
                            % (name, node, ref_node, len(ref_data)))
                    continue
                if node in ref_nodes:
                    continue
                other = datas[node]
                at = first_diff(ref_data, other)
                chk.add("%s: node %s differs from node %s at byte %d (%d vs %d bytes)"
                        % (name, node, ref_node, at, len(other), len(ref_data)),
                        lambda p=part, o=other, n=node, a=at: (
                            ["    node %s:" % p.ref_node] + self.bytes_context(p.data, a) +
                            ["    node %s:" % n] + self.bytes_context(o, a)))

    # -- context for the examples --

    def log_data(self, path):
        if path not in self.log_cache:
            with open(path, "rb") as f:
                data = f.read()
            self.log_cache[path] = (data, data.split(b"\n"))
        return self.log_cache[path]

    def log_lines(self, path):
        return self.log_data(path)[1]

    def log_line(self, path, no):
        lines = self.log_lines(path)
        text = lines[no - 1] if 0 < no <= len(lines) else b"?"
        return "    %s:%d: %s" % (os.path.relpath(path, self.dir), no, show(text))

    def writer_context(self, w, seq):
        k = w.attempt_of(seq)
        if k is None:
            return ["    (writer %d never invoked seq %d; it invoked 0..%d)"
                    % (w.wid, seq, w.next_seq - 1)]
        out = [self.log_line(w.path, w.i_line[k])]
        if w.c_line[k]:
            out.append(self.log_line(w.path, w.c_line[k]))
        else:
            out.append("    (no C line: the log ends after the I line)")
        return out

    def reader_context_at(self, part, pos):
        out = []
        for r in part.readers:
            if r.by_pos is None:    # built on the first example that needs it
                r.by_pos = {}
                for no, line in enumerate(self.log_lines(r.path), 1):
                    m = RV_RE.match(line)
                    if m is not None:
                        r.by_pos.setdefault(int(m.group(3)), []).append(no)
            for no in r.by_pos.get(pos, [])[:4]:
                out.append(self.log_line(r.path, no))
        return out or ["    (no reader logged position %d)" % pos]

    def reader_context_value(self, part, wid, seq):
        """Up to 4 R/V lines, of any reader of part, that logged value (wid, seq)."""
        needle = b" W%d S%d K" % (wid, seq)
        out = []
        for r in part.readers:
            data = self.log_data(r.path)[0]
            at = data.find(needle)
            while at >= 0 and len(out) < 4:
                start = data.rfind(b"\n", 0, at) + 1
                if data[start:start + 2] in (b"R ", b"V "):
                    out.append(self.log_line(r.path, data.count(b"\n", 0, start) + 1))
                at = data.find(needle, at + 1)
        return out or ["    (no reader logged this value)"]

    def file_context(self, part, idx):
        """The reference records around line idx, with byte offsets."""
        lo, hi = max(0, idx - self.context), min(len(part.lines), idx + self.context + 1)
        out = ["    %s (node %s) around byte %d:" % (part.name, part.ref_node,
                                                    part.starts[min(idx, len(part.lines))])]
        for i in range(lo, hi):
            out.append("    %s @%d: %s" % ("=>" if i == idx else "  ", part.starts[i],
                                           show(part.lines[i])))
        if idx >= len(part.lines) and part.torn_tail:
            out.append("    => @%d: %s (no newline)" % (part.starts[-1],
                                                      show(part.data[part.starts[-1]:])))
        return out

    def bytes_context(self, data, at):
        lo = data.rfind(b"\n", 0, at)
        lo = max(0, lo + 1)
        for _ in range(self.context):
            if lo == 0:
                break
            lo = data.rfind(b"\n", 0, lo - 1) + 1
        hi = at
        for _ in range(self.context + 1):
            nl = data.find(b"\n", hi)
            if nl < 0:
                hi = len(data)
                break
            hi = nl + 1
        out, pos = [], lo
        for ln in data[lo:hi].split(b"\n"):
            if pos >= hi:
                break
            out.append("    %s @%d: %s" % ("=>" if pos <= at < pos + len(ln) + 1 else "  ",
                                           pos, show(ln)))
            pos += len(ln) + 1
        return out or ["    (file ends at byte %d)" % len(data)]

    def value_context(self, part, wid, seq, idx=None):
        out = []
        w = self.writers.get(wid)
        if w is not None:
            out += self.writer_context(w, seq)
        if idx is not None:
            out += self.reader_context_at(part, part.starts[idx])
            out += self.file_context(part, idx)
        else:
            out += self.reader_context_value(part, wid, seq)
            near = self.nearest_lower(part, wid, seq)
            if near is not None:
                out.append("    (where W%d S%d is:)" % (wid, near[0]))
                out += self.file_context(part, near[1])
        return out

    def nearest_lower(self, part, wid, seq):
        """(seq', line index) of the value of wid just below seq in part."""
        seqs, idxs = part.runs.get(wid, ((), ()))
        best = None
        for s, i in zip(seqs, idxs):
            if s < seq and (best is None or s > best[0]):
                best = (s, i)
        return best

    # -- the checks --

    def check_files(self):
        """wellformed, known, duplicate over the reference copies."""
        wf, kn, dup = self.checks["wellformed"], self.checks["known"], self.checks["duplicate"]
        everywhere = {}   # value -> partition name of its first occurrence
        recsizes = self.recsizes
        for name in sorted(self.parts):
            part = self.parts[name]
            mine = {w.wid: w for w in part.writers}
            keys, first = part.keys, part.first
            fm = REC_RE.fullmatch
            for i, line in enumerate(part.lines):
                m = fm(line)    # parse_record, inlined: this loop sees every record
                key = None
                if m is not None:
                    n, (ws, ss, cs) = len(line) + 1, m.groups()
                    wid, seq = int(ws), int(ss)
                    if n in recsizes and (wid * 1000003 + seq * 7 + n) % 65536 == int(cs, 16):
                        key = (wid, seq)
                keys.append(key)
                if key is None:
                    wf.add("%s @%d: not a valid record: %s" % (name, part.starts[i], show(line)),
                           lambda p=part, i=i: self.file_context(p, i))
                    continue
                if key in first:
                    dup.add("%s @%d: W%d S%d again (first @%d)"
                            % (name, part.starts[i], key[0], key[1], part.starts[first[key]]),
                            partial(self.value_context, part, key[0], key[1], i))
                    continue
                first[key] = i
                other = everywhere.setdefault(key, name)
                if other != name:
                    dup.add("W%d S%d is in %s and in %s" % (key[0], key[1], other, name),
                            partial(self.value_context, part, key[0], key[1], i))
                w = mine.get(key[0])
                if w is not None and key[1] < w.next_seq and len(line) + 1 == w.recsize:
                    runs = part.runs.get(key[0])
                    if runs is None:
                        runs = part.runs[key[0]] = ([], [])
                    runs[0].append(key[1])
                    runs[1].append(i)
                else:
                    why = ("no writer %d writes %s" % (key[0], name) if w is None else
                           "writer %d invoked only 0..%d" % (w.wid, w.next_seq - 1)
                           if key[1] >= w.next_seq else
                           "writer %d writes %d-byte records" % (w.wid, w.recsize))
                    kn.add("%s @%d: W%d S%d was never invoked (%s)"
                           % (name, part.starts[i], key[0], key[1], why),
                           partial(self.value_context, part, key[0], key[1], i))
            if part.torn_tail:
                wf.add("%s @%d: torn tail without newline: %s"
                       % (name, part.starts[-1], show(part.data[part.starts[-1]:][:200])),
                       lambda p=part: self.file_context(p, len(p.lines)))
        self.everywhere = everywhere

    def check_values(self):
        """lost and failed-present, from the writers' side."""
        lost, fp = self.checks["lost"], self.checks["failed-present"]
        self.totals = {OK: 0, FAILED: 0, UNKNOWN: 0}
        for wid in sorted(self.writers):
            w = self.writers[wid]
            part = self.parts[w.partition]
            for k in range(len(w.firsts)):
                st, f, c = w.status[k], w.firsts[k], w.counts[k]
                self.totals[st] += c
                if st == OK:
                    for seq in range(f, f + c):
                        if (wid, seq) not in part.first:
                            lost.add("W%d S%d (ok) is not in %s" % (wid, seq, w.partition),
                                     partial(self.value_context, part, wid, seq))
                elif st == FAILED:
                    for seq in range(f, f + c):
                        where = self.everywhere.get((wid, seq))
                        if where is not None:
                            p = self.parts[where]
                            i = p.first[(wid, seq)]
                            fp.add("W%d S%d (failed: errno %s) is in %s @%d"
                                   % (wid, seq, self.errno_of(w, k), where, p.starts[i]),
                                   partial(self.value_context, p, wid, seq, i))

    def errno_of(self, w, k):
        line = self.log_lines(w.path)[w.c_line[k] - 1]
        return line.rsplit(b" ", 1)[-1].decode()

    def check_order(self):
        chk = self.checks["order"]
        for name in sorted(self.parts):
            part = self.parts[name]
            mine = {w.wid: w for w in part.writers}
            oks, present = [], []   # (t_done, last index, w, k) / (t_inv, first index, w, k)
            for wid in sorted(part.runs):
                w = mine[wid]
                seqs, idxs = part.runs[wid]
                if w.uniform:
                    att = [q // w.batch for q in seqs] if w.batch > 1 else seqs
                else:
                    att = [w.attempt_of(q) for q in seqs]
                # Per writer: each descent is one violation (a swap counts 2, not
                # every record between), and records of one write are adjacent.
                for j in range(1, len(seqs)):
                    if seqs[j] < seqs[j - 1]:
                        chk.add("%s @%d: W%d S%d comes after S%d (@%d)"
                                % (name, part.starts[idxs[j]], wid, seqs[j], seqs[j - 1],
                                   part.starts[idxs[j - 1]]),
                                partial(self.value_context, part, wid, seqs[j], idxs[j]))
                    elif att[j] == att[j - 1] and idxs[j] != idxs[j - 1] + 1:
                        chk.add("%s @%d: W%d S%d is not next to S%d (@%d) of the same write"
                                % (name, part.starts[idxs[j]], wid, seqs[j], seqs[j - 1],
                                   part.starts[idxs[j - 1]]),
                                partial(self.value_context, part, wid, seqs[j], idxs[j]))
                # Each write's first and last line (dicts keep the last value given).
                last_i = dict(zip(att, idxs))
                first_i = dict(zip(reversed(att), reversed(idxs)))
                t_inv, t_done, status = w.t_inv, w.t_done, w.status
                oks += [(t_done[k], i, w, k) for k, i in last_i.items() if status[k] == OK]
                present += [(t_inv[k], i, w, k) for k, i in first_i.items()]
            # Real time, over all writers of the partition: a write acknowledged
            # before another was invoked comes first. best[n] is the ok write with
            # the latest last line among the n + 1 that completed first.
            oks.sort(key=lambda o: o[0])
            done_t = [o[0] for o in oks]
            best, top = [], None
            for o in oks:
                if top is None or o[1] > top[1]:
                    top = o
                best.append(top)
            for t, i, w, k in present:
                n = bisect.bisect_left(done_t, t)
                if n == 0 or best[n - 1][1] < i:
                    continue
                _, ai, aw, ak = best[n - 1]
                chk.add("%s: write W%d S%d+%d (invoked %d) is @%d, before W%d S%d+%d "
                        "(ok at %d) @%d"
                        % (name, w.wid, w.firsts[k], w.counts[k], t, part.starts[i],
                           aw.wid, aw.firsts[ak], aw.counts[ak], aw.t_done[ak],
                           part.starts[ai]),
                        partial(self.order_context, part, w, k, i, aw, ak))

    def order_context(self, part, w, k, idx, aw, ak):
        return (self.value_context(part, w.wid, w.firsts[k], idx) +
                ["    (the write that completed before it was invoked:)"] +
                self.writer_context(aw, aw.firsts[ak]))

    def check_readers(self):
        """read-consistent, read-monotonic, wellformed of R/V, unseen."""
        rc, rm = self.checks["read-consistent"], self.checks["read-monotonic"]
        wf = self.checks["wellformed"]
        rids = {}
        self.total_reads = 0
        for path in self.reader_paths:
            r = Reader(path)
            self.read_reader(r, rc, rm, wf)
            if r.rid in rids:
                raise BadInput("%s:1" % path, "rid %d also in %s" % (r.rid, rids[r.rid]))
            rids[r.rid] = path
            self.total_reads += r.reads
            if r.sessions > 1 or r.behind:
                self.notes.append("reader %d (%s on %s): %d sessions, %d started behind"
                                  % (r.rid, r.partition, r.node, r.sessions, r.behind))
        for rid in sorted(set(self.rmap) - set(rids)):
            self.notes.append("reader %d is in readers-map.txt but has no log" % rid)

        chk = self.checks["unseen"]
        for name in sorted(self.parts):
            part = self.parts[name]
            if not part.writers:
                continue
            if not part.readers:
                self.notes.append("unseen: %s has no reader, not checked" % name)
                continue
            for w in part.writers:
                for seq in w.values(OK):
                    i = part.first.get((w.wid, seq))
                    if i is not None and part.seen[i]:
                        continue
                    if i is None and (w.wid, seq) in part.seen_elsewhere:
                        continue
                    chk.add("W%d S%d (ok) was read by no reader of %s" % (w.wid, seq, name),
                            partial(self.value_context, part, w.wid, seq, i))

    def read_reader(self, r, rc, rm, wf):
        """Parses one reader log and checks its lines as they come."""
        lines = read_lines(r.path)
        rel = os.path.relpath(r.path, self.dir)
        tok = lines[0].split(b" ", 2) if lines else []
        if len(tok) != 3 or tok[0] != b"H":
            raise BadInput("%s:1" % r.path, "want 'H <rid> <FILE>'")
        r.rid = num(tok[1], "%s:1" % r.path, "rid")
        r.file = tok[2].decode(errors="replace")
        if r.rid not in self.rmap:
            raise BadInput("%s:1" % r.path, "rid %d is not in readers-map.txt" % r.rid)
        r.partition, r.node = self.rmap[r.rid]
        part = self.parts.get(r.partition)
        if part is None:
            raise BadInput("%s:1" % r.path, "partition %s has no copy under final/"
                           % r.partition)
        part.readers.append(r)
        data, size, recsizes = part.data, len(part.data), self.recsizes
        keys, starts, seen, nlines = part.keys, part.starts, part.seen, len(part.lines)
        line_at = part.line_at
        rv_match = RV_RE.match
        expect = 0          # where the next R must start
        i_next = 0          # the reference line after the last one read (the usual next)
        for no, line in enumerate(lines[1:], 2):
            m = rv_match(line)
            if m is not None:
                kind, pos, ln = m.group(1, 3, 4)
                pos, ln, rec = int(pos), int(ln), line[m.end():]
                nl = ln - len(rec)      # 1: the line's newline; 0: a piece without one
                if (nl != 1 and nl != 0) or ln == 0:
                    raise BadInput("%s:%d" % (r.path, no), "len %d but the record has %d bytes"
                                   % (ln, len(rec)))
                if not r.sessions:
                    raise BadInput("%s:%d" % (r.path, no), "read before the first O line")
                consistent = (pos + ln <= size and data.startswith(rec, pos) and
                              (nl == 0 or data[pos + ln - 1] == 10))
                if not consistent:
                    rc.add("%s:%d: %s bytes @%d..%d differ from %s (node %s, %d bytes)"
                           % (rel, no, kind.decode(), pos, pos + ln, part.name, part.ref_node,
                              size),
                           partial(self.read_context, part, r, no, pos))
                # A consistent whole line has the verdict of the reference line.
                i = None
                if consistent and nl:
                    i = i_next if i_next < nlines and starts[i_next] == pos else line_at(pos)
                    if i is not None and starts[i + 1] != pos + ln:
                        i = None
                if i is not None:
                    key = keys[i]
                    i_next = i + 1
                else:
                    key = parse_record(rec, recsizes) if nl else None
                if key is None:
                    wf.add("%s:%d: %s record @%d is not a valid record: %s"
                           % (rel, no, kind.decode(), pos, show(rec)),
                           partial(self.read_context, part, r, no, pos))
                if kind == b"R":
                    r.reads += 1
                    if i is not None:
                        seen[i] = 1
                    elif key is not None:
                        j = part.first.get(key)
                        if j is not None:
                            seen[j] = 1
                        else:
                            part.seen_elsewhere.add(key)
                    if pos != expect:
                        rm.add("%s:%d: R @%d, expected @%d (%s)"
                               % (rel, no, pos, expect,
                                  "skipped %d bytes" % (pos - expect) if pos > expect
                                  else "overlaps %d bytes" % (expect - pos)),
                               partial(self.read_context, part, r, no, expect))
                    expect = pos + ln
                continue
            tok = line.split(b" ")
            where = "%s:%d" % (r.path, no)
            kind = tok[0]
            if kind == b"O" and len(tok) == 3:
                num(tok[1], where, "t_ns")
                s = num(tok[2], where, "session", 1)
                if s != r.sessions + 1:
                    raise BadInput(where, "session %d after session %d" % (s, r.sessions))
                r.sessions = s
            elif kind == b"E" and len(tok) == 4 and tok[2] in (b"open", b"read"):
                num(tok[1], where, "t_ns")
                num(tok[3], where, "errno")
            elif kind == b"P" and len(tok) == 4:
                num(tok[1], where, "t_ns")
                num(tok[2], where, "pos")
                num(tok[3], where, "n", 1)
            elif kind == b"SHRINK" and len(tok) == 4:
                num(tok[1], where, "t_ns")
                old, new = num(tok[2], where, "old"), num(tok[3], where, "new")
                if new >= old:
                    raise BadInput(where, "SHRINK from %d to %d" % (old, new))
                rm.add("%s:%d: the size went from %d down to %d within session %d"
                       % (rel, no, old, new, r.sessions),
                       partial(self.read_context, part, r, no, new))
            elif kind == b"BEHIND" and len(tok) == 4:
                num(tok[1], where, "t_ns")
                num(tok[2], where, "size")
                num(tok[3], where, "pos")
                r.behind += 1
            else:
                raise BadInput(where, "unknown line %r" % line[:80])

    def read_context(self, part, r, no, pos):
        """A reader's line no (and the one before) and the reference bytes at pos."""
        out = [self.log_line(r.path, n) for n in (no - 1, no) if n >= 2]
        if pos >= len(part.data):
            return out + ["    (the reference copy of %s on node %s ends at byte %d)"
                          % (part.name, part.ref_node, len(part.data))]
        return out + ["    %s (node %s) around byte %d:" % (part.name, part.ref_node, pos)] + \
            self.bytes_context(part.data, pos)

    def run(self):
        self.load()
        self.check_files()
        self.check_values()
        self.check_order()
        self.check_readers()

    def report(self, out):
        for n in self.notes:
            out.write("note: %s\n" % n)
        failed = 0
        for name in CHECKS:
            c = self.checks[name]
            out.write("check %s: %d violations\n" % (name, c.count))
            for msg, context in c.examples:
                out.write("  - %s\n" % msg)
                for ln in context() if context else []:
                    out.write("%s\n" % ln)
            if c.count:
                failed += 1
        out.write("acknowledged=%d failed=%d unknown=%d records=%d reads=%d\n"
                  % (self.totals[OK], self.totals[FAILED], self.totals[UNKNOWN],
                     sum(len(p.lines) for p in self.parts.values()), self.total_reads))
        out.write("%d passed, %d failed\n" % (len(CHECKS) - failed, failed))
        return failed


def node_key(n):
    return (0, int(n), "") if n.isdigit() else (1, 0, n)


def first_diff(a, b):
    """The first byte position where a and b differ (or the shorter length)."""
    n, step = min(len(a), len(b)), 1 << 16
    for off in range(0, n, step):
        end = min(off + step, n)
        x, y = a[off:end], b[off:end]
        if x != y:
            for i in range(len(x)):
                if x[i] != y[i]:
                    return off + i
    return n


def show(b, limit=160):
    """A log or file line for humans: printable ASCII as is, the rest escaped."""
    s = b[:limit].decode("ascii", "backslashreplace")
    s = "".join(c if c.isprintable() else "\\x%02x" % ord(c) for c in s)
    return s + ("...(%d bytes)" % len(b) if len(b) > limit else "")


def main():
    # Millions of long-lived tuples: the cyclic collector would rescan them
    # over and over (minutes instead of seconds); nothing here needs it.
    gc.disable()
    ap = argparse.ArgumentParser(description="Check one chaos run (see the header).")
    ap.add_argument("rundir")
    ap.add_argument("--definite-errnos", default="22,90,27,36",
                    help="comma-separated errnos that mean 'not stored' (default 22,90,27,36)")
    ap.add_argument("--context", type=int, default=5,
                    help="records shown before and after each example (default 5)")
    a = ap.parse_args()
    try:
        definite = {int(x) for x in a.definite_errnos.split(",") if x.strip()}
    except ValueError:
        print("check.py: --definite-errnos: want numbers like 22,90,27", file=sys.stderr)
        return 2
    if a.context < 0:
        print("check.py: --context must be >= 0", file=sys.stderr)
        return 2
    run = Run(a.rundir, definite, a.context)
    try:
        run.run()
    except BadInput as e:
        print("check.py: bad input: %s" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("check.py: bad input: %s" % e, file=sys.stderr)
        return 2
    try:
        return 1 if run.report(sys.stdout) else 0
    except BrokenPipeError:     # | head: the reader left; the verdict is the status
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1 if any(c.count for c in run.checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
