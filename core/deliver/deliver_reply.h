/* deliver_reply.h: the pure SMTP reply parser (client side): multi-line replies, enhanced codes. */
#ifndef VIPMTA_CORE_DELIVER_REPLY_H
#define VIPMTA_CORE_DELIVER_REPLY_H

#include <stddef.h>

#define DELIVER_REPLY_TEXT_MAX 1024
#define DELIVER_REPLY_LINE_MAX 2048  /* longest reply line accepted, including CRLF */

struct deliver_reply {
    int code;                 /* 250, 451, ... */
    int has_enhanced;         /* the lines carried an enhanced status code */
    int enh_class, enh_subject, enh_detail;   /* 2.1.0 */
    /* The text of all lines, joined by "\n", without the reply codes and
     * without the enhanced code when it repeats the first line's; control
     * characters are replaced by '?'; truncated (at a UTF-8 boundary). */
    char text[DELIVER_REPLY_TEXT_MAX];
    size_t line_count;
    /* EHLO keywords seen (upper case), for the EHLO reply. */
    int ext_pipelining, ext_size, ext_8bitmime, ext_smtputf8, ext_enhancedstatuscodes, ext_starttls;
    int ext_auth_plain, ext_auth_login; /* AUTH mechanisms offered (RFC 4954) */
    unsigned long long ext_size_limit; /* SIZE argument, 0 when none */
};

enum deliver_reply_status {
    DELIVER_REPLY_COMPLETE = 0,  /* *out filled, *consumed bytes used */
    DELIVER_REPLY_INCOMPLETE,    /* need more bytes */
    DELIVER_REPLY_MALFORMED,     /* not an SMTP reply (bad code, mixed codes, line too long) */
};

/* Parses one complete reply from the start of `buf`. `is_ehlo` asks to
 * collect EHLO keywords (from lines 2.. of a 2xx reply). Pure: no allocation,
 * never reads past len. *out and *consumed are meaningful only on COMPLETE;
 * MALFORMED may be returned before the reply is complete when the bytes seen
 * so far cannot start a valid reply. */
enum deliver_reply_status deliver_reply_parse(const char *buf, size_t len, int is_ehlo,
                                        struct deliver_reply *out, size_t *consumed);

/* "451 4.3.0 text" style summary for logs (text lines joined by " / ").
 * Returns the number of characters written (snprintf semantics). */
int deliver_reply_format(const struct deliver_reply *r, char *buf, size_t len);

#endif
