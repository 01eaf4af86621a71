# A follower takes the leader's commit index without bounding it by what the
# APPEND proved to match (last new entry).
s|^\( *\)uint64_t c = min64(m->commit, last_new); /\* MUTANT:commit_clamp \*/|\1uint64_t c = m->commit < last_index(r) ? m->commit : last_index(r);|
