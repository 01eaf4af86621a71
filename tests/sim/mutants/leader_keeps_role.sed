# A leader that sees a higher term adopts it but does not step down.
s|^\( *\)else if (r->role == RAFT_LEADER \&\& 0) /\* MUTANT:leader_stepdown \*/|\1else if (r->role == RAFT_LEADER \&\& 1)|
