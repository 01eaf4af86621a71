# Do not truncate a conflicting suffix: keep our entry where the leader's differs.
s|^\( *\)if (rlog_term0(&r->log, e->index) != e->term) { /\* MUTANT:truncate \*/|\1if (0) {|
