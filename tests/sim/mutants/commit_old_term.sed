# Commit an earlier-term entry by counting replicas (Raft §5.4.2, Figure 8).
s|^\( *\)if (rlog_term0(&r->log, c) != r->term) /\* MUTANT:commit_term \*/|\1if (0)|
