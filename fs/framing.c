/*
 * framing — see framing.h.
 */
#include "fs/framing.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int frame_split(size_t held_len, const char *data, size_t len, uint32_t max_record,
                struct frame *out)
{
    out->complete = 0;
    out->nrec = 0;
    out->lens = NULL;
    out->continues = false;
    out->uses_held = false;

    size_t cap = 0;
    size_t start = 0; /* start in data of the current record (after held) */
    size_t carry = held_len;
    const char *p = data, *end = data + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        size_t rec = carry + (size_t)(nl - (data + start)); /* without '\n' */
        if (rec > max_record) {
            frame_free(out);
            out->uses_held = carry > 0;
            return -EMSGSIZE;
        }
        if (out->nrec == cap) {
            cap = cap ? 2 * cap : 64;
            uint32_t *n = realloc(out->lens, cap * sizeof(*n));
            if (!n) {
                frame_free(out);
                return -ENOMEM;
            }
            out->lens = n;
        }
        out->lens[out->nrec++] = (uint32_t)(rec + 1);
        carry = 0;
        start = (size_t)(nl - data) + 1;
        p = nl + 1;
    }
    out->complete = out->nrec ? start : 0;
    /* The partial line that would be held afterwards must fit too. */
    if (carry + (len - start) > max_record) {
        frame_free(out);
        out->continues = true;
        out->uses_held = carry > 0;
        return -EMSGSIZE;
    }
    return 0;
}

void frame_free(struct frame *f)
{
    free(f->lens);
    f->lens = NULL;
    f->nrec = 0;
    f->complete = 0;
}
