# Leave rebuilding at the follower's own commit index (capped), not the leader's.
# The follower's commit is capped to what it already matches, so it leaves as
# soon as the leader certifies, holding far less than was committed.
s|^\( *\)if (held < r->rebuild_target) /\* MUTANT:rebuild_exit \*/|\1if (held < r->commit)|
