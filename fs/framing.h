/*
 * framing — line framing of the bytes written to a partition file.
 *
 * Each complete '\n'-terminated line is one record; bytes after the last
 * '\n' are a partial line, held by the open file and joined with its next
 * write (or committed at close).  Pure functions, no I/O.
 */
#ifndef MK_FRAMING_H
#define MK_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct frame {
    size_t complete; /* bytes of `data` that end the last complete record */
    size_t nrec;     /* complete records (the first one starts with the held bytes) */
    uint32_t *lens;  /* nrec lengths, each including its '\n'; malloc'ed or NULL */
    bool continues;  /* after -EMSGSIZE: the over-long record goes on past this
                        write (no '\n' ends it here) */
    bool uses_held;  /* after -EMSGSIZE: the over-long record begins with the
                        held bytes (else they stay held) */
};

/* Splits held (held_len bytes already held) + data.  A record longer than
 * max_record bytes ('\n' excluded), complete or partial, fails the whole
 * split with -EMSGSIZE; -ENOMEM.  On success, the new partial line is
 * data[complete..len) when nrec > 0, else held + data. */
int frame_split(size_t held_len, const char *data, size_t len, uint32_t max_record,
                struct frame *out);

void frame_free(struct frame *f);

#endif
