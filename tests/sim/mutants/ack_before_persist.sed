# Acknowledge entries as soon as they are received, before they are durable.
s|^\( *\)if (min64(stable_index(r), r->ack_limit) >= last_new) /\* MUTANT:ack_durable \*/|\1if (1)|
