/* deliver_client_dotstuff.c: dot-stuffing of outbound message data (RFC 5321 4.5.2), pure and resumable. */
#include "deliver_client.h"

#include <string.h>

/* state: where the previous piece stopped */
enum {
    STUFF_START = 0, /* nothing sent yet: at a line start, no CRLF owed at the end */
    STUFF_MID = 1,   /* inside a line */
    STUFF_CR = 2,    /* just after a CR */
    STUFF_EOL = 3,   /* just after CRLF (or a bare LF): at a line start */
};

size_t deliver_client_dot_stuff(const char *in, size_t len, char *out, unsigned *state)
{
    size_t o = 0;
    unsigned st = *state;
    const char *p = in, *end = in + len;

    while (p < end) {
        if ((st == STUFF_START || st == STUFF_EOL) && *p == '.')
            out[o++] = '.';
        /* copy up to and including the next LF in one go */
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *stop = lf ? lf + 1 : end;
        size_t n = (size_t)(stop - p);
        memcpy(out + o, p, n);
        o += n;
        if (lf)
            st = STUFF_EOL;
        else
            st = stop[-1] == '\r' ? STUFF_CR : STUFF_MID;
        p = stop;
    }
    *state = st;
    return o;
}

size_t deliver_client_dot_end(unsigned state, char *out)
{
    size_t o = 0;
    if (state == STUFF_CR)
        out[o++] = '\n';
    else if (state == STUFF_MID)
        out[o++] = '\r', out[o++] = '\n';
    memcpy(out + o, ".\r\n", 3);
    return o + 3;
}
