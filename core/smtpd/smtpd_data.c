/* smtpd_data.c: the DATA phase: Received: header, streaming dot-unstuffed text to the spool, X-Binding, limits. */
#include "smtpd_session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>

/* Received: lines are folded to stay within this many characters. */
#define SMTPD_FOLD_WIDTH 78

void smtpd_data_flush(struct smtpd_data *d)
{
    if (d->out_len && d->writer && !d->write_errno && !d->too_big && !d->line_too_long) {
        if (spool_writer_write(d->writer, d->out, d->out_len) != 0)
            d->write_errno = errno ? errno : EIO;
    }
    d->out_len = 0;
}

/* Message octets: counted, and written unless the message is being discarded. */
static void smtpd_data_put(struct smtpd_data *d, const char *p, size_t n)
{
    d->size += n;
    if (d->max_size && d->size > d->max_size)
        d->too_big = 1;
    if (d->too_big || d->write_errno || d->line_too_long)
        return;
    while (n) {
        size_t room = sizeof(d->out) - d->out_len;
        if (!room) {
            smtpd_data_flush(d);
            if (d->write_errno)
                return;
            continue;
        }
        size_t c = n < room ? n : room;
        memcpy(d->out + d->out_len, p, c);
        d->out_len += c;
        p += c;
        n -= c;
    }
}

/* Appends (a part of) the X-Binding value, whitespace-trimmed. */
static void smtpd_xb_append(struct smtpd_data *d, const char *p, size_t n)
{
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    if (!n)
        return;
    size_t need = n + (d->xb_len ? 1 : 0);
    if (d->xb_len + need >= sizeof(d->x_binding)) {
        d->xb_state = 3; /* too long to be a binding name: ignored */
        d->xb_len = 0;
        d->x_binding[0] = '\0';
        return;
    }
    if (d->xb_len)
        d->x_binding[d->xb_len++] = ' ';
    memcpy(d->x_binding + d->xb_len, p, n);
    d->xb_len += n;
    d->x_binding[d->xb_len] = '\0';
}

/* A header-section line is complete (in d->hdr). */
static void smtpd_header_line(struct smtpd_data *d)
{
    const char *h = d->hdr;
    size_t n = d->hdr_len;
    d->hdr_len = 0;
    if (n == 0) {
        d->in_headers = 0; /* the empty line: the body starts */
        if (d->xb_state == 1)
            d->xb_state = 2;
        return;
    }
    if (h[0] == ' ' || h[0] == '\t') {
        if (d->xb_state == 1)
            smtpd_xb_append(d, h, n);
        return;
    }
    if (d->xb_state == 1)
        d->xb_state = 2;
    const char *colon = memchr(h, ':', n);
    if (!colon) {
        d->in_headers = 0; /* not a header field: no header section after all */
        return;
    }
    size_t name = (size_t)(colon - h);
    while (name && (h[name - 1] == ' ' || h[name - 1] == '\t'))
        name--;
    if (d->xb_state == 0 && name == 9 && strncasecmp(h, "X-Binding", 9) == 0) {
        d->xb_state = 1;
        smtpd_xb_append(d, colon + 1, n - (size_t)(colon - h) - 1);
    }
}

/* Line text (not its end). */
static void smtpd_data_text(struct smtpd_data *d, const char *p, size_t n)
{
    d->line_len += n;
    if (d->in_headers) {
        size_t room = sizeof(d->hdr) - d->hdr_len;
        size_t c = n < room ? n : room;
        memcpy(d->hdr + d->hdr_len, p, c);
        d->hdr_len += c;
    }
    smtpd_data_put(d, p, n);
}

/* The end of a line: CRLF, or a bare CR or LF, written as CRLF either way
 * (no bare CR or LF is ever stored, so none can reach a next hop). */
static void smtpd_data_eol(struct smtpd_data *d, int crlf)
{
    if (!crlf)
        d->bare_eol = 1;
    if (d->line_len + 2 > SMTPD_TEXT_LINE_MAX)
        d->line_too_long = 1;
    smtpd_data_put(d, "\r\n", 2);
    if (d->in_headers)
        smtpd_header_line(d);
    d->line_len = 0;
    d->prev_crlf = crlf;
}

int smtpd_data_scan(struct smtpd_data *d, const char *p, size_t len, size_t *used)
{
    size_t i = 0;
    while (i < len) {
        char c = p[i];
        switch (d->scan) {
        case SMTPD_SCAN_BOL:
            if (c == '.') {
                d->line_len = 1; /* the stuffing dot counts towards the line length */
                d->scan = SMTPD_SCAN_DOT;
                i++;
            } else {
                d->scan = SMTPD_SCAN_TEXT;
            }
            break;
        case SMTPD_SCAN_DOT:
            if (c == '\r') {
                d->scan = SMTPD_SCAN_DOT_CR;
                i++;
            } else if (c == '\n') {
                /* "." ended by a bare LF: not the end of data (only CRLF.CRLF is) */
                i++;
                smtpd_data_eol(d, 0);
                d->scan = SMTPD_SCAN_BOL;
            } else {
                d->scan = SMTPD_SCAN_TEXT; /* the dot is dropped (unstuffed) */
            }
            break;
        case SMTPD_SCAN_DOT_CR:
            if (c == '\n') {
                i++;
                d->scan = SMTPD_SCAN_BOL;
                if (d->prev_crlf) {
                    d->line_len = 0;
                    *used = i;
                    return 1;
                }
                smtpd_data_eol(d, 1); /* bare CR/LF "." CRLF: an empty line, not the end */
            } else {
                /* "." then a bare CR: an empty line (the dot was a stuffing
                 * one); c starts the next line */
                smtpd_data_eol(d, 0);
                d->scan = SMTPD_SCAN_BOL;
            }
            break;
        case SMTPD_SCAN_TEXT: {
            size_t j = i;
            while (j < len && p[j] != '\r' && p[j] != '\n')
                j++;
            if (j > i)
                smtpd_data_text(d, p + i, j - i);
            i = j;
            if (i == len)
                break;
            if (p[i] == '\r') {
                d->scan = SMTPD_SCAN_CR;
            } else {
                smtpd_data_eol(d, 0);
                d->scan = SMTPD_SCAN_BOL;
            }
            i++;
            break;
        }
        case SMTPD_SCAN_CR:
            if (c == '\n') {
                i++;
                smtpd_data_eol(d, 1);
                d->scan = SMTPD_SCAN_BOL;
                break;
            }
            /* a bare CR ends its line (SMTP smuggling: a next hop must never
             * see a line end, or an end of data, that is not CRLF); c starts
             * the next line */
            smtpd_data_eol(d, 0);
            d->scan = SMTPD_SCAN_BOL;
            break;
        }
    }
    *used = len;
    return 0;
}

/* Header folding: pieces separated by spaces, a new line when one would pass the width. */
struct smtpd_fold {
    char *buf;
    size_t cap, len, col;
};

static void smtpd_fold_raw(struct smtpd_fold *f, const char *p, size_t n)
{
    if (f->len + n >= f->cap)
        n = f->cap - f->len - 1;
    memcpy(f->buf + f->len, p, n);
    f->len += n;
    f->buf[f->len] = '\0';
}

static void smtpd_fold_add(struct smtpd_fold *f, const char *piece)
{
    size_t n = strlen(piece);
    if (f->col) {
        if (f->col + 1 + n > SMTPD_FOLD_WIDTH) {
            smtpd_fold_raw(f, "\r\n\t", 3);
            f->col = 1;
        } else {
            smtpd_fold_raw(f, " ", 1);
            f->col++;
        }
    }
    smtpd_fold_raw(f, piece, n);
    f->col += n;
}

/* Characters safe in a Received: clause (others become '?'). */
static void smtpd_received_safe(const char *in, char *out, size_t outlen, int allow_utf8)
{
    size_t i = 0;
    for (; in && in[i] && i + 1 < outlen; i++) {
        unsigned char c = (unsigned char)in[i];
        int ok = (c > 0x20 && c < 0x7f && c != '(' && c != ')' && c != '\\' && c != ';') ||
                 (allow_utf8 && c >= 0x80);
        out[i] = ok ? (char)c : '?';
    }
    out[i] = '\0';
}

/* RFC 5322 date-time, without the locale. */
static void smtpd_rfc5322_date(time_t now, char *out, size_t len)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    localtime_r(&now, &tm);
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out, len, "%s, %d %s %d %02d:%02d:%02d %c%02ld%02ld", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec, sign, off / 60, off % 60);
}

/* Received: from HELO ([ADDR]) by HOST (vipmta) with ESMTP id ID for <RCPT>; DATE */
static size_t smtpd_received(const struct smtpd_session *s, char *buf, size_t cap)
{
    const struct vipmta_config *cfg = s->cfg;
    char helo[SMTPD_COMMAND_LINE_MAX], rcpt[SMTPD_PATH_MAX], piece[SMTPD_COMMAND_LINE_MAX + 16];
    char date[64];
    struct smtpd_fold f = {buf, cap, 0, 0};

    buf[0] = '\0';
    smtpd_fold_add(&f, "Received:");
    smtpd_received_safe(s->helo, helo, sizeof(helo), s->smtputf8);
    snprintf(piece, sizeof(piece), "from %s", helo[0] ? helo : "unknown");
    smtpd_fold_add(&f, piece);
    snprintf(piece, sizeof(piece), "([%s%s])", s->addr.ss_family == AF_INET6 &&
             strchr(s->addr_str, ':') ? "IPv6:" : "", s->addr_str);
    smtpd_fold_add(&f, piece);
    snprintf(piece, sizeof(piece), "by %s", cfg->hostname);
    smtpd_fold_add(&f, piece);
    smtpd_fold_add(&f, "(vipmta)");
    char protocol[16], using[160];
    smtpd_tls_received(s, protocol, sizeof(protocol), using, sizeof(using));
    if (using[0])
        smtpd_fold_add(&f, using);
    snprintf(piece, sizeof(piece), "with %s", protocol);
    smtpd_fold_add(&f, piece);
    snprintf(piece, sizeof(piece), "id %s%s", s->queue_id, s->rcpt_count == 1 ? "" : ";");
    smtpd_fold_add(&f, piece);
    if (s->rcpt_count == 1) {
        smtpd_received_safe(s->rcpts[0], rcpt, sizeof(rcpt), s->smtputf8);
        snprintf(piece, sizeof(piece), "for <%s>;", rcpt);
        smtpd_fold_add(&f, piece);
    }
    smtpd_rfc5322_date(time(NULL), date, sizeof(date));
    smtpd_fold_add(&f, date);
    smtpd_fold_raw(&f, "\r\n", 2);
    return f.len;
}

int smtpd_data_begin(struct smtpd_session *s)
{
    struct smtpd_data *d = calloc(1, sizeof(*d));
    if (!d) {
        smtpd_log(s, VIPMTA_LOG_ERROR, "DATA: out of memory: 451 4.3.0");
        smtpd_reply(s, "451 4.3.0 Error: out of memory, try again");
        return -1;
    }
    d->writer = spool_writer_open();
    if (!d->writer) {
        int err = errno;
        smtpd_log(s, VIPMTA_LOG_ERROR, "DATA: cannot create a spool file: %s: 451 4.3.0",
                  strerror(err));
        smtpd_reply(s, "451 4.3.0 Error: cannot create a spool file, try again");
        free(d);
        return -1;
    }
    snprintf(s->queue_id, sizeof(s->queue_id), "%s", spool_writer_id(d->writer));
    d->prev_crlf = 1;
    d->in_headers = 1;
    d->max_size = s->cfg->smtp.max_message_size;
    d->deadline = time(NULL) + (time_t)s->cfg->smtp.data_deadline;
    d->out_len = smtpd_received(s, d->out, sizeof(d->out));
    s->data = d;
    return 0;
}

int smtpd_data_consume(struct smtpd_session *s, struct evbuffer *in)
{
    struct smtpd_data *d = s->data;
    int ended = 0;
    while (!ended && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[8];
        int nv = evbuffer_peek(in, -1, NULL, v, 8);
        size_t total = 0;
        for (int k = 0; k < nv && k < 8 && !ended; k++) {
            size_t used = 0;
            ended = smtpd_data_scan(d, v[k].iov_base, v[k].iov_len, &used);
            total += used;
        }
        evbuffer_drain(in, total);
    }
    if (!ended)
        return 0;
    smtpd_data_flush(d);
    smtpd_commit(s);
    return 1;
}

void smtpd_data_abort(struct smtpd_session *s)
{
    struct smtpd_data *d = s->data;
    if (!d)
        return;
    if (d->writer)
        spool_writer_abort(d->writer);
    free(d);
    s->data = NULL;
    s->queue_id[0] = '\0';
}
