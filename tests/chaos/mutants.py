#!/usr/bin/env python3
"""mutants.py — the deliberate bugs the chaos run must catch (tests/chaos/mutants.sh).

Each mutant is a list of (file, old, new) edits applied to a copy of the
source tree; an `old` text that is not found exactly once is an error (the
code moved on: update the mutant), never a silently skipped mutant.

  mutants.py list                  names, one per line, with their faults
  mutants.py apply NAME TREE       applies NAME's edits to the copy in TREE
  mutants.py faults NAME           the fault list its chaos run uses
  mutants.py seed NAME             the seed known to catch it (tried first)
"""
import sys

MUTANTS = [
    {
        "name": "leader-acks-alone",
        "seed": 41,  # the seed at which it was last caught (-d 30, 3 nodes)
        "what": "the leader acknowledges a write once its own fsync is done, "
                "without waiting for a majority",
        "faults": "kill,partition-majority,isolate",
        "edits": [("raft/raft.c",
                   "    uint64_t c = m[n / 2]; /* the (n/2+1)-th highest */",
                   "    uint64_t c = stable_index(r); /* MUTANT leader-acks-alone */")],
    },
    {
        "name": "follower-acks-before-fsync",
        "seed": 1,  # the seed at which it was last caught (-d 30, 3 nodes)
        "what": "a follower acknowledges entries before its fdatasync",
        "faults": "powercut",
        "edits": [("broker/replica.c",
                   "    if (r->opt.no_sync) {",
                   "    if (r->opt.no_sync || raft_role(r->raft) == RAFT_FOLLOWER) { /* MUTANT */")],
    },
    {
        "name": "reads-past-commit",
        "seed": 1,  # the seed at which it was last caught (-d 30, 3 nodes)
        "what": "a replica shows and serves records past the commit point",
        "faults": "partition-majority,isolate",
        "edits": [("broker/partition.c",
                   "    o->end_pos = p->commit_pos;",
                   "    o->end_pos = p->local ? plog_end_pos(&p->log) : p->commit_pos; /* MUTANT */"),
                  ("broker/partition.c",
                   "    if (pos >= p->commit_pos) {\n        if (pos < plog_first_pos(&p->log))",
                   "    if (pos >= plog_end_pos(&p->log)) { /* MUTANT */\n        if (pos < plog_first_pos(&p->log))"),
                  ("broker/partition.c",
                   "    if (size > p->commit_pos - pos)\n        size = (size_t)(p->commit_pos - pos);",
                   "    if (size > plog_end_pos(&p->log) - pos) /* MUTANT */\n        size = (size_t)(plog_end_pos(&p->log) - pos);")],
    },
    {
        "name": "resend-without-producer-seq",
        "seed": 41,  # the seed at which it was last caught (-d 30, 3 nodes)
        "what": "a forwarded write sent again after a leader change gets new "
                "sequence numbers, so the leader cannot see it is a resend",
        "faults": "kill,isolate,partition-majority",
        "edits": [("broker/pgroup.c",
                   "    w->req = cluster_next_req(g->c);\n    struct wire_call call = {.kind = WIRE_WRITE_REQ,",
                   "    if (w->req) { /* MUTANT resend-without-producer-seq */\n"
                   "        w->seq = g->next_seq;\n        g->next_seq += w->n;\n    }\n"
                   "    w->req = cluster_next_req(g->c);\n    struct wire_call call = {.kind = WIRE_WRITE_REQ,")],
    },
    {
        "name": "follower-truncates-committed",
        "seed": 1,  # the seed at which it was last caught (-d 30, 3 nodes)
        "what": "a replica drops its last committed entries when it starts, and "
                "votes anyway",
        "faults": "kill,kill2",
        "edits": [("broker/pgroup.c",
                   "        bool lost = saved > plog_next_off(&p->log);",
                   "        if (plog_next_off(&p->log) > plog_first_off(&p->log) + 40) /* MUTANT */\n"
                   "            plog_truncate(&p->log, plog_next_off(&p->log) - 40);\n"
                   "        bool lost = false;")],
    },
    {
        "name": "minority-leader-acks",
        "seed": 41,  # the seed at which it was last caught (-d 30, 3 nodes)
        "what": "a leader cut off from the majority keeps acknowledging writes "
                "(it counts only the replicas it still hears, as an unclean ISR)",
        "faults": "partition-majority,isolate",
        "edits": [("raft/raft.c",
                   "        if (!pr->voter)\n            continue;\n        uint64_t v = pr->id == r->id ? stable_index(r) : pr->match;",
                   "        if (!pr->voter || (pr->id != r->id && !pr->recent_active)) /* MUTANT */\n"
                   "            continue;\n        uint64_t v = pr->id == r->id ? stable_index(r) : pr->match;"),
                  ("raft/raft.c",
                   "            if (n > 0 && active < n / 2 + 1) {",
                   "            if (0 && n > 0 && active < n / 2 + 1) { /* MUTANT */")],
    },
]


def find(name):
    for m in MUTANTS:
        if m["name"] == name:
            return m
    sys.exit(f"mutants.py: no mutant {name!r}")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "list":
        for m in MUTANTS:
            print(f"{m['name']}\t{m['faults']}\t{m['what']}")
        return
    if len(sys.argv) == 3 and sys.argv[1] == "faults":
        print(find(sys.argv[2])["faults"])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "seed":
        print(find(sys.argv[2])["seed"])
        return
    if len(sys.argv) == 4 and sys.argv[1] == "apply":
        m = find(sys.argv[2])
        for path, old, new in m["edits"]:
            full = f"{sys.argv[3]}/{path}"
            text = open(full).read()
            n = text.count(old)
            if n != 1:
                sys.exit(f"mutants.py: {m['name']}: {path}: the text to change is found {n} times, "
                         "not once (the code moved on: update the mutant)")
            open(full, "w").write(text.replace(old, new))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
