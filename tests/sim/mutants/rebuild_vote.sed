# A server that lost its disk votes at once (its rebuilding flag is ignored).
s|^\( *\)if (r->rebuilding) /\* MUTANT:rebuild_vote \*/|\1if (0)|
