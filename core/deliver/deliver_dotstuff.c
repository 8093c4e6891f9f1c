/* deliver_dotstuff.c: outbound message data (RFC 5321 4.5.2): dot-stuffing and CRLF line ends only, pure and resumable. */
#include "deliver_client.h"

#include <string.h>

/* state: where the previous piece stopped */
enum {
    STUFF_START = 0, /* nothing sent yet: at a line start, no CRLF owed at the end */
    STUFF_MID = 1,   /* inside a line */
    STUFF_CR = 2,    /* just after a CR, not sent yet: CRLF or a bare CR, the next byte says */
    STUFF_EOL = 3,   /* just after a line end: at a line start */
};

/* Every line end goes out as CRLF: a bare CR or a bare LF in the spooled text
 * (a message spooled before inbound normalization, a module's header) becomes
 * one, so no next hop can read a line end, and an end of data, that vipmta
 * did not send as such (SMTP smuggling). */
size_t deliver_client_dot_stuff(const char *in, size_t len, char *out, unsigned *state)
{
    size_t o = 0;
    unsigned st = *state;
    const char *p = in, *end = in + len;

    while (p < end) {
        if (st == STUFF_CR) {
            out[o++] = '\r';
            out[o++] = '\n';
            st = STUFF_EOL;
            if (*p == '\n') {
                p++;
                continue;
            }
        }
        if ((st == STUFF_START || st == STUFF_EOL) && *p == '.')
            out[o++] = '.';
        /* copy the line's text up to its end in one go */
        const char *q = p;
        while (q < end && *q != '\r' && *q != '\n')
            q++;
        memcpy(out + o, p, (size_t)(q - p));
        o += (size_t)(q - p);
        if (q == end) {
            if (q > p)
                st = STUFF_MID;
            p = q;
            break;
        }
        if (*q == '\r') {
            st = STUFF_CR; /* decided by the next byte, maybe in the next piece */
        } else {
            out[o++] = '\r'; /* a bare LF */
            out[o++] = '\n';
            st = STUFF_EOL;
        }
        p = q + 1;
    }
    *state = st;
    return o;
}

size_t deliver_client_dot_end(unsigned state, char *out)
{
    size_t o = 0;
    if (state == STUFF_CR || state == STUFF_MID)
        out[o++] = '\r', out[o++] = '\n';
    memcpy(out + o, ".\r\n", 3);
    return o + 3;
}
