/* queue_dsn_compose.c: composes RFC 3464 bounces (multipart/report; report-type=delivery-status) in memory. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "queue_dsn_compose.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef unsigned char uchar;

#define DSN_HOST_MAX 255      /* reporting and remote MTA names */
#define DSN_ID_MAX 64         /* queue id as used in Message-ID and X- field */
#define DSN_ADDR_MAX 600      /* an address as written (encoded) */
#define DSN_DIAG_MAX 900      /* a diagnostic text, before folding */
#define DSN_LINE_MAX 998      /* RFC 5322 2.1.1, without CRLF */
#define DSN_FOLD_AT 76        /* preferred width when folding */

/* ---- a growing, NUL-terminated byte buffer ---- */

struct sb {
    char *p;
    size_t len, cap;
    int oom;
};

static int queue_dsn_compose_sb_reserve(struct sb *b, size_t more)
{
    if (b->oom)
        return -1;
    if (more > SIZE_MAX - b->len - 1) {
        b->oom = 1;
        return -1;
    }
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 2048;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void queue_dsn_compose_sb_put(struct sb *b, const void *s, size_t n)
{
    if (queue_dsn_compose_sb_reserve(b, n) != 0)
        return;
    if (n)
        memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void queue_dsn_compose_sb_str(struct sb *b, const char *s)
{
    queue_dsn_compose_sb_put(b, s, strlen(s));
}

static void queue_dsn_compose_sb_fmt(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void queue_dsn_compose_sb_fmt(struct sb *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0 && queue_dsn_compose_sb_reserve(b, (size_t)n) == 0) {
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    } else if (n < 0) {
        b->oom = 1;
    }
    va_end(ap2);
}

static int has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((uchar)s[i] >= 0x80)
            return 1;
    return 0;
}

/* ---- sanitising copies of caller-supplied text ---- */

/* Host names and ids: letters, digits, '.', '-', '_' (and ':' '[' ']' for
 * hosts); anything else becomes '_'. Cut at cap - 1. */
static void queue_dsn_compose_clean_token(char *dst, size_t cap, const char *src, int host)
{
    size_t n = 0;
    for (const uchar *s = (const uchar *)(src ? src : ""); *s && n + 1 < cap; s++) {
        uchar c = *s;
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-' || c == '_' || (host && (c == ':' || c == '[' || c == ']'));
        dst[n++] = ok ? (char)c : '_';
    }
    dst[n] = '\0';
    if (n == 0 && cap > 7)
        strcpy(dst, "unknown");
}

/* Free text (diagnostics): control characters (CR, LF, TAB, NUL...) become
 * spaces, runs of white space collapse to one, leading/trailing space goes;
 * bytes >= 0x80 become '?' (the delivery-status part is 7-bit). Longer text
 * is cut and marked with "...". */
static void queue_dsn_compose_clean_text(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    int space = 0, cut = 0;
    for (const uchar *s = (const uchar *)(src ? src : ""); *s; s++) {
        uchar c = *s;
        if (c <= 0x20 || c == 0x7F) {
            space = n > 0;
            continue;
        }
        if (n + space + 1 + 3 >= cap) {
            cut = 1;
            break;
        }
        if (space)
            dst[n++] = ' ';
        space = 0;
        dst[n++] = c >= 0x80 ? '?' : (char)c;
    }
    if (cut)
        memcpy(dst + n, "...", 3), n += 3;
    dst[n] = '\0';
}

/* An address for human text and header fields: controls become '?', UTF-8
 * bytes are kept (keep8) or become '?'. Cut at cap - 1. */
static void queue_dsn_compose_clean_addr(char *dst, size_t cap, const char *src, int keep8)
{
    size_t n = 0;
    for (const uchar *s = (const uchar *)(src ? src : ""); *s && n + 1 < cap; s++) {
        uchar c = *s;
        dst[n++] = (c < 0x20 || c == 0x7F || (!keep8 && c >= 0x80)) ? '?' : (char)c;
    }
    dst[n] = '\0';
}

/* Decodes one UTF-8 code point at s (NUL-terminated); U+FFFD and one byte for
 * invalid input. */
static unsigned long queue_dsn_compose_utf8_next(const uchar *s, size_t *adv)
{
    uchar c = s[0];
    size_t more;
    unsigned long cp, min;
    if (c < 0x80) {
        *adv = 1;
        return c;
    } else if (c >= 0xC2 && c <= 0xDF) {
        more = 1, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        more = 2, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        more = 3, cp = c & 0x07, min = 0x10000;
    } else {
        *adv = 1;
        return 0xFFFD;
    }
    for (size_t k = 1; k <= more; k++) {
        if ((s[k] & 0xC0) != 0x80) { /* also stops at the NUL */
            *adv = 1;
            return 0xFFFD;
        }
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        *adv = 1;
        return 0xFFFD;
    }
    *adv = more + 1;
    return cp;
}

/* "rfc822; addr" for ASCII addresses; "utf-8; addr" with the RFC 6533
 * utf-8-addr-xtext encoding (\x{HEX} for non-QCHARs) otherwise. */
static void queue_dsn_compose_write_address_type(struct sb *b, const char *addr)
{
    char buf[DSN_ADDR_MAX + 1];
    const char *a = addr ? addr : "";
    if (!has_8bit(a, strlen(a))) {
        queue_dsn_compose_clean_addr(buf, sizeof(buf), a, 0);
        queue_dsn_compose_sb_str(b, "rfc822; ");
        queue_dsn_compose_sb_str(b, buf);
        return;
    }
    size_t n = 0;
    for (const uchar *s = (const uchar *)a; *s;) {
        size_t adv;
        unsigned long cp = queue_dsn_compose_utf8_next(s, &adv);
        char piece[16];
        if (cp > 0x20 && cp < 0x7F && cp != '+' && cp != '=' && cp != '\\')
            piece[0] = (char)cp, piece[1] = '\0';
        else
            snprintf(piece, sizeof(piece), "\\x{%02lX}", cp);
        size_t pl = strlen(piece);
        if (n + pl >= sizeof(buf))
            break;
        memcpy(buf + n, piece, pl);
        n += pl;
        s += adv;
    }
    buf[n] = '\0';
    queue_dsn_compose_sb_str(b, "utf-8; ");
    queue_dsn_compose_sb_str(b, buf);
}

/* Writes the words of `text` (single-spaced, see queue_dsn_compose_clean_text) onto the
 * current line, which already holds `col` octets, folding with `fold` (CRLF
 * plus `indent` octets of white space) before a word that would take the
 * line past DSN_FOLD_AT. Words are shorter than DSN_LINE_MAX - indent, so no
 * line exceeds DSN_LINE_MAX. */
static void queue_dsn_compose_write_folded(struct sb *b, size_t col, const char *text, const char *fold,
                         size_t indent)
{
    const char *p = text;
    int first = 1;
    while (*p) {
        const char *w = p;
        while (*p && *p != ' ')
            p++;
        size_t wl = (size_t)(p - w);
        if (col > indent && (first ? col + wl > DSN_LINE_MAX : col + 1 + wl > DSN_FOLD_AT)) {
            queue_dsn_compose_sb_str(b, fold);
            col = indent;
        } else if (!first) {
            queue_dsn_compose_sb_put(b, " ", 1);
            col++;
        }
        queue_dsn_compose_sb_put(b, w, wl);
        col += wl;
        first = 0;
        while (*p == ' ')
            p++;
    }
}

/* ---- status codes ---- */

/* class "." 1*3digit "." 1*3digit, class in `classes`; the length, or 0. */
static size_t queue_dsn_compose_status_code_len(const char *s, const char *classes)
{
    size_t i = 0;
    if (!s[0] || !strchr(classes, s[0]) || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t start = i;
        while (s[i] >= '0' && s[i] <= '9' && i - start < 3)
            i++;
        if (i == start || (s[i] >= '0' && s[i] <= '9'))
            return 0;
        if (part == 0) {
            if (s[i] != '.')
                return 0;
            i++;
        }
    }
    return i;
}

/* Length of a diagnostic-type prefix ("smtp;", "X-Foo;") at d, including
 * the ';', or 0. */
static size_t queue_dsn_compose_type_prefix_len(const char *d)
{
    size_t i = 0;
    while (i < 32 && ((d[i] >= 'A' && d[i] <= 'Z') || (d[i] >= 'a' && d[i] <= 'z') ||
                      (d[i] >= '0' && d[i] <= '9') || d[i] == '-'))
        i++;
    return (i > 0 && d[i] == ';') ? i + 1 : 0;
}

/* Length of an SMTP reply code with its separator ("550 ", "451-", "550")
 * at d, or 0. */
static size_t queue_dsn_compose_reply_code_len(const char *d)
{
    if (d[0] < '2' || d[0] > '5' || d[1] < '0' || d[1] > '9' || d[2] < '0' || d[2] > '9')
        return 0;
    if (d[3] == '\0')
        return 3;
    return (d[3] == ' ' || d[3] == '-') ? 4 : 0;
}

/* The Status: value for a recipient, into out: the given one when it is a
 * well-formed 4.x.x/5.x.x code; else the enhanced code found at the start of
 * the diagnostic ("smtp; 550 5.1.1 ...", "550 5.1.1 ...", "5.1.1 ..."); else
 * "4.0.0"/"5.0.0" after the reply code; else "5.0.0". */
static void queue_dsn_compose_derive_status(const struct queue_dsn_recipient *r, char *out, size_t cap)
{
    size_t n;
    if (r->status && (n = queue_dsn_compose_status_code_len(r->status, "45")) != 0 && r->status[n] == '\0') {
        snprintf(out, cap, "%s", r->status);
        return;
    }
    char classes[3] = "45";
    const char *d = r->diagnostic;
    if (d) {
        d += queue_dsn_compose_type_prefix_len(d);
        while (*d == ' ' || *d == '\t')
            d++;
        if ((n = queue_dsn_compose_reply_code_len(d)) != 0) {
            if (d[0] == '2' || d[0] == '3') {
                classes[0] = '\0'; /* a success code in a failure: ignore */
            } else {
                classes[0] = d[0];
                classes[1] = '\0';
            }
            d += n;
        }
        n = classes[0] ? queue_dsn_compose_status_code_len(d, classes) : 0;
        if (n && (d[n] == ' ' || d[n] == '\t' || d[n] == '\0' || d[n] == '\r' || d[n] == '\n')) {
            snprintf(out, cap, "%.*s", (int)n, d);
            return;
        }
    }
    snprintf(out, cap, "%c.0.0", classes[0] == '4' && !classes[1] ? '4' : '5');
}

/* Splits "type; text" into the diagnostic type and the cleaned text; an
 * untyped text that starts with an SMTP reply code is of type "smtp", any
 * other is our own ("X-Vipmta"). */
static void queue_dsn_compose_split_diagnostic(const char *diag, char *type, size_t tcap, char *text, size_t cap)
{
    size_t tl = queue_dsn_compose_type_prefix_len(diag);
    if (tl && tl <= tcap) {
        memcpy(type, diag, tl - 1);
        type[tl - 1] = '\0';
        queue_dsn_compose_clean_text(text, cap, diag + tl);
        return;
    }
    const char *d = diag;
    while (*d == ' ' || *d == '\t')
        d++;
    snprintf(type, tcap, "%s", queue_dsn_compose_reply_code_len(d) ? "smtp" : "X-Vipmta");
    queue_dsn_compose_clean_text(text, cap, diag);
}

/* ---- dates and unique names ---- */

static void queue_dsn_compose_rfc5322_date(char *buf, size_t cap, time_t t)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    if (!gmtime_r(&t, &tm) || tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 || tm.tm_mon > 11) {
        snprintf(buf, cap, "Thu, 1 Jan 1970 00:00:00 +0000");
        return;
    }
    snprintf(buf, cap, "%s, %d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static unsigned queue_dsn_compose_next_serial(void)
{
    static unsigned serial;
    return __atomic_add_fetch(&serial, 1, __ATOMIC_RELAXED);
}

/* ---- the parts ---- */

static void queue_dsn_compose_part_text(struct sb *b, const struct queue_dsn_request *req, const char *host)
{
    queue_dsn_compose_sb_fmt(b, "This is the mail delivery system at %s.\r\n\r\n", host);
    if (req->rcpt_count == 1)
        queue_dsn_compose_sb_str(b, "Your message could not be delivered to its recipient. The mail\r\n"
                  "system gave up on the address below; a delivery report and the\r\n"
                  "headers of your message are attached.\r\n");
    else
        queue_dsn_compose_sb_str(b, "Your message could not be delivered to one or more of its\r\n"
                  "recipients. The mail system gave up on the addresses below; a\r\n"
                  "delivery report and the headers of your message are attached.\r\n");
    for (size_t i = 0; i < req->rcpt_count; i++) {
        const struct queue_dsn_recipient *r = &req->rcpts[i];
        char addr[DSN_ADDR_MAX], remote[DSN_HOST_MAX + 1], status[16], type[32];
        char text[DSN_DIAG_MAX + 1], line[DSN_DIAG_MAX + DSN_HOST_MAX + 64];
        queue_dsn_compose_clean_addr(addr, sizeof(addr), r->address, 1);
        queue_dsn_compose_derive_status(r, status, sizeof(status));
        if (r->diagnostic)
            queue_dsn_compose_split_diagnostic(r->diagnostic, type, sizeof(type), text, sizeof(text));
        else
            text[0] = '\0';
        if (r->remote_mta) {
            queue_dsn_compose_clean_token(remote, sizeof(remote), r->remote_mta, 1);
            snprintf(line, sizeof(line), "host %s said: %s", remote,
                     text[0] ? text : "(no reason given)");
        } else {
            snprintf(line, sizeof(line), "%s", text[0] ? text : "delivery failed");
        }
        /* "line" can be long; its words are folded, each under DSN_DIAG_MAX */
        char words[sizeof(line) + 32];
        snprintf(words, sizeof(words), "%s (status %s)", line, status);
        queue_dsn_compose_sb_fmt(b, "\r\n<%s>:\r\n    ", addr);
        queue_dsn_compose_write_folded(b, 4, words, "\r\n    ", 4);
        queue_dsn_compose_sb_str(b, "\r\n");
    }
}

static void queue_dsn_compose_part_status(struct sb *b, const struct queue_dsn_request *req, const char *host,
                        const char *qid)
{
    char date[64];
    queue_dsn_compose_sb_fmt(b, "Reporting-MTA: dns; %s\r\n", host);
    queue_dsn_compose_sb_fmt(b, "X-Vipmta-Queue-ID: %s\r\n", qid);
    if (req->arrival) {
        queue_dsn_compose_rfc5322_date(date, sizeof(date), req->arrival);
        queue_dsn_compose_sb_fmt(b, "Arrival-Date: %s\r\n", date);
    }
    for (size_t i = 0; i < req->rcpt_count; i++) {
        const struct queue_dsn_recipient *r = &req->rcpts[i];
        char status[16], remote[DSN_HOST_MAX + 1], type[32], text[DSN_DIAG_MAX + 1];
        queue_dsn_compose_sb_str(b, "\r\nFinal-Recipient: ");
        queue_dsn_compose_write_address_type(b, r->address);
        queue_dsn_compose_sb_str(b, "\r\nAction: failed\r\n");
        queue_dsn_compose_derive_status(r, status, sizeof(status));
        queue_dsn_compose_sb_fmt(b, "Status: %s\r\n", status);
        if (r->remote_mta) {
            queue_dsn_compose_clean_token(remote, sizeof(remote), r->remote_mta, 1);
            queue_dsn_compose_sb_fmt(b, "Remote-MTA: dns; %s\r\n", remote);
        }
        if (r->diagnostic) {
            queue_dsn_compose_split_diagnostic(r->diagnostic, type, sizeof(type), text, sizeof(text));
            queue_dsn_compose_sb_fmt(b, "Diagnostic-Code: %s;", type);
            size_t col = strlen("Diagnostic-Code: ;") + strlen(type);
            if (text[0]) {
                queue_dsn_compose_sb_put(b, " ", 1);
                queue_dsn_compose_write_folded(b, col + 1, text, "\r\n ", 1);
            }
            queue_dsn_compose_sb_str(b, "\r\n");
        }
    }
}

/* The original header section: up to its end (the first empty line), line
 * ends made CRLF, lines cut at DSN_LINE_MAX octets, NULs made '?'. */
static void queue_dsn_compose_part_headers(struct sb *b, const char *h, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t start = i;
        while (i < len && h[i] != '\r' && h[i] != '\n')
            i++;
        size_t ll = i - start;
        if (ll == 0)
            break; /* end of the header section */
        if (ll > DSN_LINE_MAX)
            ll = DSN_LINE_MAX;
        for (size_t k = 0; k < ll; k++) {
            char c = h[start + k];
            queue_dsn_compose_sb_put(b, c == '\0' ? "?" : &c, 1);
        }
        queue_dsn_compose_sb_str(b, "\r\n");
        if (i < len && h[i] == '\r')
            i++;
        if (i < len && h[i] == '\n')
            i++;
    }
}

static int queue_dsn_compose_contains(const struct sb *b, const char *needle)
{
    return b->p && memmem(b->p, b->len, needle, strlen(needle)) != NULL;
}

static void queue_dsn_compose_part_header_lines(struct sb *b, const char *desc, const char *type, const struct sb *body)
{
    queue_dsn_compose_sb_fmt(b, "Content-Description: %s\r\n", desc);
    queue_dsn_compose_sb_fmt(b, "Content-Type: %s\r\n", type);
    if (has_8bit(body->p ? body->p : "", body->len))
        queue_dsn_compose_sb_str(b, "Content-Transfer-Encoding: 8bit\r\n");
    queue_dsn_compose_sb_str(b, "\r\n");
}

char *queue_dsn_compose(const struct queue_dsn_request *req, size_t *len)
{
    struct sb msg = {0}, text = {0}, status = {0}, hdrs = {0};
    char host[DSN_HOST_MAX + 1], qid[DSN_ID_MAX + 1], idhost[DSN_HOST_MAX + 1];
    char sender[DSN_ADDR_MAX], date[64], boundary[96];
    time_t now = req->now ? req->now : time(NULL);
    unsigned serial = queue_dsn_compose_next_serial();

    queue_dsn_compose_clean_token(host, sizeof(host), req->reporting_mta, 1);
    queue_dsn_compose_clean_token(idhost, sizeof(idhost), req->reporting_mta, 0);
    queue_dsn_compose_clean_token(qid, sizeof(qid), req->queue_id, 0);
    queue_dsn_compose_clean_addr(sender, sizeof(sender), req->original_sender, 1);
    queue_dsn_compose_rfc5322_date(date, sizeof(date), now);

    queue_dsn_compose_part_text(&text, req, host);
    queue_dsn_compose_part_status(&status, req, host, qid);
    int with_headers = req->original_headers && req->original_headers_len;
    if (with_headers) {
        queue_dsn_compose_part_headers(&hdrs, req->original_headers, req->original_headers_len);
        with_headers = hdrs.len > 0;
    }

    /* a boundary that occurs in none of the parts */
    for (unsigned salt = 0;; salt++) {
        snprintf(boundary, sizeof(boundary), "=_vipmta-dsn_%llx_%x_%x_%x", (unsigned long long)now,
                 (unsigned)getpid(), serial, salt);
        if (!queue_dsn_compose_contains(&text, boundary) && !queue_dsn_compose_contains(&status, boundary) && !queue_dsn_compose_contains(&hdrs, boundary))
            break;
    }
    int eightbit = has_8bit(text.p ? text.p : "", text.len) ||
                   has_8bit(hdrs.p ? hdrs.p : "", hdrs.len) || has_8bit(sender, strlen(sender));

    queue_dsn_compose_sb_fmt(&msg, "From: \"Mail Delivery System\" <MAILER-DAEMON@%s>\r\n", host);
    queue_dsn_compose_sb_fmt(&msg, "To: <%s>\r\n", sender);
    queue_dsn_compose_sb_str(&msg, "Subject: Undelivered Mail Returned to Sender\r\n");
    queue_dsn_compose_sb_fmt(&msg, "Date: %s\r\n", date);
    queue_dsn_compose_sb_fmt(&msg, "Message-ID: <%s.dsn.%llx.%x.%x@%s>\r\n", qid, (unsigned long long)now,
           (unsigned)getpid(), serial, idhost);
    queue_dsn_compose_sb_str(&msg, "Auto-Submitted: auto-replied\r\n");
    queue_dsn_compose_sb_str(&msg, "MIME-Version: 1.0\r\n");
    queue_dsn_compose_sb_fmt(&msg, "Content-Type: multipart/report; report-type=delivery-status;\r\n"
                 "\tboundary=\"%s\"\r\n", boundary);
    if (eightbit)
        queue_dsn_compose_sb_str(&msg, "Content-Transfer-Encoding: 8bit\r\n");
    queue_dsn_compose_sb_str(&msg, "\r\nThis is a MIME-encapsulated message.\r\n\r\n");

    queue_dsn_compose_sb_fmt(&msg, "--%s\r\n", boundary);
    queue_dsn_compose_part_header_lines(&msg, "Notification",
                      has_8bit(text.p ? text.p : "", text.len) ? "text/plain; charset=utf-8"
                                                               : "text/plain; charset=us-ascii",
                      &text);
    queue_dsn_compose_sb_put(&msg, text.p, text.len);

    queue_dsn_compose_sb_fmt(&msg, "\r\n--%s\r\n", boundary);
    queue_dsn_compose_part_header_lines(&msg, "Delivery report", "message/delivery-status", &status);
    queue_dsn_compose_sb_put(&msg, status.p, status.len);

    if (with_headers) {
        queue_dsn_compose_sb_fmt(&msg, "\r\n--%s\r\n", boundary);
        queue_dsn_compose_part_header_lines(&msg, "Undelivered Message Headers", "text/rfc822-headers", &hdrs);
        queue_dsn_compose_sb_put(&msg, hdrs.p, hdrs.len);
    }
    queue_dsn_compose_sb_fmt(&msg, "\r\n--%s--\r\n", boundary);

    int oom = msg.oom || text.oom || status.oom || hdrs.oom;
    free(text.p);
    free(status.p);
    free(hdrs.p);
    if (oom) {
        free(msg.p);
        return NULL;
    }
    if (len)
        *len = msg.len;
    return msg.p;
}
