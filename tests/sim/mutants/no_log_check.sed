# Vote without the log-up-to-date check (Raft §5.4.1).
s|^\( *\)log_ok = log_ok; /\* MUTANT:log_ok \*/|\1log_ok = true;|
