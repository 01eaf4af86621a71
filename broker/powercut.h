/*
 * powercut — a fault-injection hook for tests: with MINIKAFKA_POWERCUT=1 in
 * the daemon's environment, SIGUSR2 cuts its power.
 *
 * kill -9 keeps the page cache: what a daemon wrote and never fsynced is
 * still on the disk after a restart, so a bug that acknowledges data before
 * its fdatasync cannot be seen that way.  A power cut keeps only what reached
 * the disk.  This hook puts wrappers in front of the store's system calls
 * (sysio) that know, per file (by device and inode), the size that is
 * durable: a file found at its first open counts as durable as it is; one
 * created since counts as empty until its first fsync; a successful
 * fdatasync or fsync makes durable the size the file had when it began;
 * ftruncate lowers it.  SIGUSR2 then, on the loop thread: waits until no
 * wrapped call is half done and stops any other from starting, truncates
 * every known file to its durable size, removes the files never synced, and
 * _exit()s at once (the mount dies as with kill -9).
 *
 * Limits of the model (as the unit tests' power cuts): directory entries
 * count as durable at once; a write below the durable size (in-place repair)
 * is taken as durable.  Never enabled unless the variable is set.
 */
#ifndef MK_POWERCUT_H
#define MK_POWERCUT_H

#include <stdbool.h>
#include <uv.h>

/* Installs the wrappers when MINIKAFKA_POWERCUT=1 (before the store opens
 * anything); returns whether it did. */
bool powercut_wrap(void);

/* Starts listening for SIGUSR2 on loop (after the daemon forked). */
int powercut_listen(uv_loop_t *loop, uv_signal_t *sig);

#endif
