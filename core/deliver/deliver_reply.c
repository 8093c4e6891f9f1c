/* deliver_reply.c: the pure SMTP reply parser (client side): multi-line replies, enhanced codes, EHLO keywords. */
#include "deliver_reply.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

typedef unsigned char uchar;

static int deliver_reply_is_digit(uchar c)
{
    return c >= '0' && c <= '9';
}

static uchar deliver_reply_to_upper(uchar c)
{
    return (c >= 'a' && c <= 'z') ? (uchar)(c - 'a' + 'A') : c;
}

/* Reply-code = %x32-35 %x30-35 %x30-39 (RFC 5321 4.2); checks the first
 * min(n, 3) bytes. */
static int deliver_reply_code_prefix_ok(const uchar *l, size_t n)
{
    if (n > 0 && (l[0] < '2' || l[0] > '5'))
        return 0;
    if (n > 1 && (l[1] < '0' || l[1] > '5'))
        return 0;
    if (n > 2 && !deliver_reply_is_digit(l[2]))
        return 0;
    return 1;
}

static int deliver_reply_code_value(const uchar *l)
{
    return (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
}

/* 1*3DIGIT at t[*i]; returns the value or -1. */
static int deliver_reply_enh_number(const uchar *t, size_t n, size_t *i)
{
    int v = 0;
    size_t start = *i;
    while (*i < n && deliver_reply_is_digit(t[*i]) && *i - start < 3)
        v = v * 10 + (t[(*i)++] - '0');
    if (*i == start || (*i < n && deliver_reply_is_digit(t[*i])))
        return -1;
    return v;
}

/* An enhanced status code (RFC 3463, class matching the reply's first digit)
 * at the start of t[0..n), followed by white space or the end of the text.
 * Returns the number of bytes to strip (the code and the spaces after it),
 * or 0 when there is no such code. */
static size_t deliver_reply_enhanced_code(const uchar *t, size_t n, int first_digit, int *cls, int *sub, int *det)
{
    size_t i = 0;
    if (n < 5 || t[0] - '0' != first_digit || (first_digit != 2 && first_digit != 4 && first_digit != 5))
        return 0;
    if (t[1] != '.')
        return 0;
    i = 2;
    int s = deliver_reply_enh_number(t, n, &i);
    if (s < 0 || i >= n || t[i] != '.')
        return 0;
    i++;
    int d = deliver_reply_enh_number(t, n, &i);
    if (d < 0 || (i < n && t[i] != ' ' && t[i] != '\t'))
        return 0;
    while (i < n && (t[i] == ' ' || t[i] == '\t'))
        i++;
    *cls = first_digit;
    *sub = s;
    *det = d;
    return i;
}

/* EHLO keyword `kw` (upper case) as the first word of t[0..n)? Returns the
 * offset just past it, or 0. */
static size_t deliver_reply_ehlo_keyword(const uchar *t, size_t n, const char *kw)
{
    size_t k = strlen(kw);
    if (n < k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (deliver_reply_to_upper(t[i]) != (uchar)kw[i])
            return 0;
    if (n > k && t[k] != ' ' && t[k] != '\t' && t[k] != '=')
        return 0;
    return k;
}

static void deliver_reply_ehlo_line(struct deliver_reply *out, const uchar *t, size_t n)
{
    size_t k;
    if (deliver_reply_ehlo_keyword(t, n, "PIPELINING"))
        out->ext_pipelining = 1;
    else if (deliver_reply_ehlo_keyword(t, n, "8BITMIME"))
        out->ext_8bitmime = 1;
    else if (deliver_reply_ehlo_keyword(t, n, "SMTPUTF8"))
        out->ext_smtputf8 = 1;
    else if (deliver_reply_ehlo_keyword(t, n, "ENHANCEDSTATUSCODES"))
        out->ext_enhancedstatuscodes = 1;
    else if (deliver_reply_ehlo_keyword(t, n, "STARTTLS"))
        out->ext_starttls = 1;
    else if ((k = deliver_reply_ehlo_keyword(t, n, "AUTH")) != 0) {
        /* "AUTH PLAIN LOGIN" (or the old "AUTH=PLAIN LOGIN") */
        while (k < n) {
            while (k < n && (t[k] == ' ' || t[k] == '\t' || t[k] == '='))
                k++;
            size_t start = k;
            while (k < n && t[k] != ' ' && t[k] != '\t')
                k++;
            if (deliver_reply_ehlo_keyword(t + start, k - start, "PLAIN") == 5 && k - start == 5)
                out->ext_auth_plain = 1;
            if (deliver_reply_ehlo_keyword(t + start, k - start, "LOGIN") == 5 && k - start == 5)
                out->ext_auth_login = 1;
        }
    }
    else if ((k = deliver_reply_ehlo_keyword(t, n, "SIZE")) != 0) {
        unsigned long long v = 0;
        int digits = 0;
        out->ext_size = 1;
        while (k < n && (t[k] == ' ' || t[k] == '\t' || t[k] == '='))
            k++;
        for (; k < n && deliver_reply_is_digit(t[k]); k++) {
            unsigned d = (unsigned)(t[k] - '0');
            v = (v > (ULLONG_MAX - d) / 10) ? ULLONG_MAX : v * 10 + d;
            digits = 1;
        }
        out->ext_size_limit = digits ? v : 0;
    }
}

/* Appends t[0..n) to out->text, control characters replaced; sets *cut when
 * something did not fit. */
static void deliver_reply_text_append(struct deliver_reply *out, size_t *tlen, const uchar *t, size_t n, int *cut)
{
    for (size_t i = 0; i < n; i++) {
        if (*tlen + 1 >= sizeof(out->text)) {
            *cut = 1;
            return;
        }
        uchar c = t[i];
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F)
            c = '?';
        out->text[(*tlen)++] = (char)c;
    }
}

/* After truncation, drop an incomplete UTF-8 sequence at the end. */
static void deliver_reply_utf8_trim(char *s, size_t *n)
{
    size_t i = *n, back = 0;
    while (i > 0 && back < 3 && ((uchar)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0 || (uchar)s[i - 1] < 0xC0)
        return; /* ASCII or stray continuation bytes: leave as is */
    uchar lead = (uchar)s[i - 1];
    size_t need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : 1;
    if (back < need)
        *n = i - 1;
}

/* Could the partial line l[0..n) (no LF seen yet) still become a valid reply line? */
static int deliver_reply_partial_line_ok(const uchar *l, size_t n, int code)
{
    if (!deliver_reply_code_prefix_ok(l, n))
        return 0;
    if (n >= 3 && code && deliver_reply_code_value(l) != code)
        return 0;
    if (n >= 4 && l[3] != ' ' && l[3] != '-' && l[3] != '\r')
        return 0;
    if (n >= 5 && l[3] == '\r')
        return 0; /* "250\r" must be followed by LF */
    return 1;
}

enum deliver_reply_status deliver_reply_parse(const char *buf, size_t len, int is_ehlo,
                                        struct deliver_reply *out, size_t *consumed)
{
    const uchar *b = (const uchar *)buf;
    size_t pos = 0, tlen = 0;
    int cut = 0;

    memset(out, 0, sizeof(*out));
    if (consumed)
        *consumed = 0;
    if (!buf)
        return len ? DELIVER_REPLY_MALFORMED : DELIVER_REPLY_INCOMPLETE;

    for (;;) {
        const uchar *l = b + pos;
        size_t avail = len - pos;
        size_t scan = avail < DELIVER_REPLY_LINE_MAX ? avail : DELIVER_REPLY_LINE_MAX;
        const uchar *nl = memchr(l, '\n', scan);
        if (!nl) {
            if (avail >= DELIVER_REPLY_LINE_MAX)
                return DELIVER_REPLY_MALFORMED;
            return deliver_reply_partial_line_ok(l, avail, out->code) ? DELIVER_REPLY_INCOMPLETE
                                                        : DELIVER_REPLY_MALFORMED;
        }
        size_t linelen = (size_t)(nl - l); /* without the LF */
        size_t end = linelen;
        if (end && l[end - 1] == '\r')
            end--;
        if (end < 3 || !deliver_reply_code_prefix_ok(l, 3))
            return DELIVER_REPLY_MALFORMED;
        int code = deliver_reply_code_value(l);
        if (out->code && code != out->code)
            return DELIVER_REPLY_MALFORMED;
        out->code = code;

        int last;
        const uchar *t = l + 4;
        size_t n = 0;
        if (end == 3) {
            last = 1;
        } else if (l[3] == ' ' || l[3] == '-') {
            last = l[3] == ' ';
            n = end - 4;
        } else {
            return DELIVER_REPLY_MALFORMED;
        }
        out->line_count++;

        if (is_ehlo && out->line_count >= 2 && code / 100 == 2)
            deliver_reply_ehlo_line(out, t, n);

        int c, s, d;
        size_t strip = deliver_reply_enhanced_code(t, n, code / 100, &c, &s, &d);
        if (out->line_count == 1) {
            if (strip) {
                out->has_enhanced = 1;
                out->enh_class = c;
                out->enh_subject = s;
                out->enh_detail = d;
            }
        } else {
            if (strip && !(out->has_enhanced && c == out->enh_class && s == out->enh_subject &&
                           d == out->enh_detail))
                strip = 0; /* a different code: keep it in the text */
            deliver_reply_text_append(out, &tlen, (const uchar *)"\n", 1, &cut);
        }
        deliver_reply_text_append(out, &tlen, t + strip, n - strip, &cut);

        pos += linelen + 1;
        if (last)
            break;
    }
    if (cut)
        deliver_reply_utf8_trim(out->text, &tlen);
    out->text[tlen] = '\0';
    if (consumed)
        *consumed = pos;
    return DELIVER_REPLY_COMPLETE;
}

/* snprintf-like bounded writer */
struct writer {
    char *buf;
    size_t len, n;
};

static void deliver_reply_w_char(struct writer *w, char c)
{
    if (w->buf && w->n + 1 < w->len)
        w->buf[w->n] = c;
    w->n++;
}

static void deliver_reply_w_str(struct writer *w, const char *s)
{
    while (*s)
        deliver_reply_w_char(w, *s++);
}

int deliver_reply_format(const struct deliver_reply *r, char *buf, size_t len)
{
    struct writer w = {buf, len, 0};
    char num[64];

    snprintf(num, sizeof(num), "%03d", r->code);
    deliver_reply_w_str(&w, num);
    if (r->has_enhanced) {
        snprintf(num, sizeof(num), " %d.%d.%d", r->enh_class, r->enh_subject, r->enh_detail);
        deliver_reply_w_str(&w, num);
    }
    size_t tl = strnlen(r->text, sizeof(r->text));
    if (tl)
        deliver_reply_w_char(&w, ' ');
    for (size_t i = 0; i < tl; i++) {
        uchar c = (uchar)r->text[i];
        if (c == '\n')
            deliver_reply_w_str(&w, " / ");
        else
            deliver_reply_w_char(&w, (c < 0x20 && c != '\t') || c == 0x7F ? '?' : (char)c);
    }
    if (buf && len)
        buf[w.n < len ? w.n : len - 1] = '\0';
    return w.n > INT_MAX ? INT_MAX : (int)w.n;
}
