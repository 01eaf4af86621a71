# Grant two votes in one term: forget whom we already voted for.
s|^\( *\)can = r->vote == m->from .*/\* MUTANT:vote_once \*/|\1can = true;|
