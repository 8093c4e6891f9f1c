/* smtpd_parse.c: the pure SMTP command parser (server side): verbs, paths, MAIL/RCPT parameters. */
#include "smtpd_parse.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

typedef unsigned char uchar;

/* A parse result: the status and the text for the reply. */
struct smtpd_parse_verdict {
    enum smtpd_parse_status st;
    const char *text;
};

static const char TXT_MAIL[] = "Syntax: MAIL FROM:<address>";
static const char TXT_RCPT[] = "Syntax: RCPT TO:<address>";

static int smtpd_parse_is_alpha(uchar c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int smtpd_parse_is_digit(uchar c)
{
    return c >= '0' && c <= '9';
}

static int smtpd_parse_is_ws(uchar c)
{
    return c == ' ' || c == '\t';
}

static uchar smtpd_parse_to_upper(uchar c)
{
    return (c >= 'a' && c <= 'z') ? (uchar)(c - 'a' + 'A') : c;
}

/* RFC 5321 atext (RFC 5322 3.2.3) */
static int smtpd_parse_is_atext(uchar c)
{
    return smtpd_parse_is_alpha(c) || smtpd_parse_is_digit(c) || (c && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Case-insensitive comparison of n bytes against an upper-case literal of length n. */
static int smtpd_parse_ci_eq(const uchar *s, size_t n, const char *upper)
{
    if (strlen(upper) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (smtpd_parse_to_upper(s[i]) != (uchar)upper[i])
            return 0;
    return 1;
}

/* Is s[0..n) well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF)? */
static int smtpd_parse_utf8_valid(const uchar *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uchar c = s[i];
        size_t more;
        uchar lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else {
            return 0;
        }
        if (n - i - 1 < more)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t k = 2; k <= more; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return 0;
        i += more + 1;
    }
    return 1;
}

static int smtpd_parse_has_8bit(const uchar *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 0x80)
            return 1;
    return 0;
}

/* Dotted-quad IPv4 (Snum = 1*3DIGIT, 0..255). */
static int smtpd_parse_ipv4_valid(const uchar *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part) {
            if (i >= n || s[i] != '.')
                return 0;
            i++;
        }
        size_t start = i;
        unsigned v = 0;
        while (i < n && smtpd_parse_is_digit(s[i]) && i - start < 3)
            v = v * 10 + (unsigned)(s[i++] - '0');
        if (i == start || v > 255)
            return 0;
    }
    return i == n;
}

/* "[1.2.3.4]" or "[IPv6:...]" spanning all of s[0..n). */
static int smtpd_parse_address_literal_valid(const uchar *s, size_t n)
{
    if (n < 3 || s[0] != '[' || s[n - 1] != ']')
        return 0;
    s++;
    n -= 2;
    if (n > 5 && smtpd_parse_ci_eq(s, 5, "IPV6:")) {
        char buf[INET6_ADDRSTRLEN + 1];
        struct in6_addr a6;
        s += 5;
        n -= 5;
        if (n >= sizeof(buf))
            return 0;
        for (size_t i = 0; i < n; i++)
            if (!(smtpd_parse_is_digit(s[i]) || (s[i] >= 'a' && s[i] <= 'f') || (s[i] >= 'A' && s[i] <= 'F') ||
                  s[i] == ':' || s[i] == '.'))
                return 0;
        memcpy(buf, s, n);
        buf[n] = '\0';
        return inet_pton(AF_INET6, buf, &a6) == 1;
    }
    return smtpd_parse_ipv4_valid(s, n);
}

/* Loose domain check: non-empty labels of letters, digits and hyphens, at
 * most SMTPD_DOMAIN_MAX octets; bytes >= 0x80 (well-formed UTF-8) when
 * utf8_ok; HELO names (`helo`) may also use '_' and end in one dot. */
static int smtpd_parse_domain_valid(const uchar *s, size_t n, int utf8_ok, int helo)
{
    if (n == 0 || n > SMTPD_DOMAIN_MAX)
        return 0;
    if (helo && n > 1 && s[n - 1] == '.')
        n--;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        uchar c = s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!(smtpd_parse_is_alpha(c) || smtpd_parse_is_digit(c) || c == '-' || (helo && c == '_') || (utf8_ok && c >= 0x80)))
            return 0;
        label++;
    }
    if (label == 0)
        return 0;
    return !utf8_ok || smtpd_parse_utf8_valid(s, n);
}

/* Mailbox = Local-part "@" ( Domain / address-literal ), over all of s[0..n).
 * Returns 1 when valid, 0 when not; *no_domain is set when the local part is
 * well formed but there is no "@domain" at all. */
static int smtpd_parse_mailbox_valid(const uchar *s, size_t n, int utf8_ok, int *no_domain)
{
    size_t i = 0;
    *no_domain = 0;
    if (n == 0)
        return 0;
    if (s[0] == '"') {
        i = 1;
        for (;;) {
            if (i >= n)
                return 0;
            uchar c = s[i];
            if (c == '"')
                break;
            if (c == '\\') {
                if (i + 1 >= n || s[i + 1] < 32 || s[i + 1] > 126)
                    return 0;
                i += 2;
                continue;
            }
            if (!((c >= 32 && c <= 126) || (utf8_ok && c >= 0x80)))
                return 0;
            i++;
        }
        i++; /* the closing quote */
    } else {
        /* Dot-string; dots are not policed (leading, trailing or doubled dots
         * occur in the wild and are harmless to us). */
        while (i < n && s[i] != '@') {
            uchar c = s[i];
            if (!(smtpd_parse_is_atext(c) || c == '.' || (utf8_ok && c >= 0x80)))
                return 0;
            i++;
        }
        if (i == 0)
            return 0;
    }
    if (i == n) {
        *no_domain = 1;
        return 0;
    }
    if (s[i] != '@')
        return 0;
    i++;
    if (i < n && s[i] == '[')
        return smtpd_parse_address_literal_valid(s + i, n - i);
    return smtpd_parse_domain_valid(s + i, n - i, utf8_ok, 0);
}

/* Parses the "<...>" path that starts at a[*pos] (which is '<'). On success
 * stores the mailbox (source route stripped) in out (size SMTPD_PATH_MAX),
 * sets *pos past the '>' and returns SMTPD_PARSE_OK. `postmaster_ok` lets
 * RCPT name "<Postmaster>" without a domain. */
static struct smtpd_parse_verdict smtpd_parse_path(const uchar *a, size_t n, size_t *pos, int allow_null,
                                 int postmaster_ok, const char *usage, char *out)
{
    struct smtpd_parse_verdict bad = {SMTPD_PARSE_SYNTAX, usage};
    size_t start = *pos, i = start + 1, end;
    int quoted = 0;

    /* find the closing '>' outside quoted strings */
    for (end = i; end < n; end++) {
        uchar c = a[end];
        if (quoted) {
            if (c == '\\')
                end++;
            else if (c == '"')
                quoted = 0;
        } else if (c == '"') {
            quoted = 1;
        } else if (c == '>') {
            break;
        }
    }
    if (end >= n)
        return bad;
    if (end - start + 1 > SMTPD_PATH_MAX) {
        bad.text = "Syntax: address too long";
        return bad;
    }
    *pos = end + 1;
    if (end == i) {
        if (!allow_null)
            return bad;
        out[0] = '\0';
        return (struct smtpd_parse_verdict){SMTPD_PARSE_OK, NULL};
    }
    if (a[i] == '@') {
        /* A-d-l = At-domain *( "," At-domain ) ":" -- accepted and dropped */
        for (;;) {
            size_t d = ++i; /* past '@' */
            while (i < end && a[i] != ',' && a[i] != ':')
                i++;
            if (i >= end || !smtpd_parse_domain_valid(a + d, i - d, 1, 0))
                return bad;
            if (a[i] == ':') {
                i++;
                break;
            }
            i++; /* ',' */
            if (i >= end || a[i] != '@')
                return bad;
        }
    }
    int no_domain;
    size_t mlen = end - i;
    if (!smtpd_parse_mailbox_valid(a + i, mlen, 1, &no_domain)) {
        if (!(no_domain && postmaster_ok && smtpd_parse_ci_eq(a + i, mlen, "POSTMASTER")))
            return bad;
    }
    if (smtpd_parse_has_8bit(a + i, mlen) && !smtpd_parse_utf8_valid(a + i, mlen)) {
        bad.text = "Syntax: address is not valid UTF-8";
        return bad;
    }
    memcpy(out, a + i, mlen); /* mlen <= SMTPD_PATH_MAX - 2 */
    out[mlen] = '\0';
    return (struct smtpd_parse_verdict){SMTPD_PARSE_OK, NULL};
}

/* Writes "<prefix><keyword>" into out->error_buf; the keyword is
 * [A-Za-z0-9-] by construction and is cut when long. */
static struct smtpd_parse_verdict smtpd_parse_param_error(struct smtpd_command *out, const char *prefix, const uchar *kw,
                                  size_t kwlen)
{
    int cut = kwlen > 40;
    snprintf(out->error_buf, sizeof(out->error_buf), "%s%.*s%s", prefix, (int)(cut ? 40 : kwlen),
             (const char *)kw, cut ? "..." : "");
    return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, out->error_buf};
}

/* Parses the space-separated esmtp-params in a[i..n) for MAIL (is_mail) or RCPT. */
static struct smtpd_parse_verdict smtpd_parse_params(const uchar *a, size_t n, size_t i, int is_mail,
                                   struct smtpd_command *out)
{
    unsigned seen = 0; /* bit per known parameter */
    enum { P_SIZE = 1, P_BODY = 2, P_UTF8 = 4, P_NOTIFY = 8, P_ORCPT = 16, P_AUTH = 32 };
    size_t count = 0;

    for (size_t j = i; j < n; j++)
        if (!smtpd_parse_is_ws(a[j]) && (j == i || smtpd_parse_is_ws(a[j - 1])))
            count++;
    if (count > SMTPD_PARAMS_MAX)
        return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, "Too many parameters"};
    while (i < n) {
        while (i < n && smtpd_parse_is_ws(a[i]))
            i++;
        if (i >= n)
            break;
        size_t tok = i;
        while (i < n && !smtpd_parse_is_ws(a[i]))
            i++;
        size_t toklen = i - tok;
        const uchar *t = a + tok;

        /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
        size_t k = 0;
        while (k < toklen && (smtpd_parse_is_alpha(t[k]) || smtpd_parse_is_digit(t[k]) || (k && t[k] == '-')))
            k++;
        if (k == 0 || (k < toklen && t[k] != '='))
            return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, "Malformed parameter"};
        int has_val = k < toklen;
        const uchar *v = t + k + 1;
        size_t vlen = has_val ? toklen - k - 1 : 0;
        /* esmtp-value = 1*(%d33-60 / %d62-126), UTF-8 tolerated */
        if (has_val) {
            if (vlen == 0)
                return smtpd_parse_param_error(out, "Malformed parameter: ", t, k);
            for (size_t j = 0; j < vlen; j++)
                if (v[j] == '=' || v[j] < 33 || v[j] == 127)
                    return smtpd_parse_param_error(out, "Malformed parameter: ", t, k);
        }

        unsigned bit;
        if (is_mail && smtpd_parse_ci_eq(t, k, "SIZE")) {
            bit = P_SIZE;
            if (!has_val || vlen > 20)
                return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, "Bad SIZE parameter"};
            uint64_t sz = 0;
            for (size_t j = 0; j < vlen; j++) {
                if (!smtpd_parse_is_digit(v[j]))
                    return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, "Bad SIZE parameter"};
                unsigned d = (unsigned)(v[j] - '0');
                if (sz > (UINT64_MAX - d) / 10)
                    return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, "Bad SIZE parameter"};
                sz = sz * 10 + d;
            }
            out->has_size = 1;
            out->size = sz;
        } else if (is_mail && smtpd_parse_ci_eq(t, k, "BODY")) {
            bit = P_BODY;
            if (has_val && smtpd_parse_ci_eq(v, vlen, "7BIT"))
                out->body = SMTPD_BODY_7BIT;
            else if (has_val && smtpd_parse_ci_eq(v, vlen, "8BITMIME"))
                out->body = SMTPD_BODY_8BITMIME;
            else
                return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER,
                                        "Bad BODY parameter (7BIT or 8BITMIME)"};
        } else if (is_mail && smtpd_parse_ci_eq(t, k, "SMTPUTF8")) {
            bit = P_UTF8;
            if (has_val)
                return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, "SMTPUTF8 takes no value"};
            out->smtputf8 = 1;
        } else if (is_mail && smtpd_parse_ci_eq(t, k, "AUTH")) {
            bit = P_AUTH; /* RFC 4954 5: the submitter's identity; accepted, not trusted */
            if (!has_val)
                return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, "Bad AUTH parameter"};
        } else if (!is_mail && smtpd_parse_ci_eq(t, k, "NOTIFY")) {
            bit = P_NOTIFY; /* DSN (RFC 3461) is not offered: accepted, ignored */
            if (!has_val)
                return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, "Bad NOTIFY parameter"};
        } else if (!is_mail && smtpd_parse_ci_eq(t, k, "ORCPT")) {
            bit = P_ORCPT; /* likewise */
            if (!has_val)
                return (struct smtpd_parse_verdict){SMTPD_PARSE_BAD_PARAMETER, "Bad ORCPT parameter"};
        } else {
            return smtpd_parse_param_error(out, "Unsupported parameter: ", t, k);
        }
        if (seen & bit)
            return smtpd_parse_param_error(out, "Duplicate parameter: ", t, k);
        seen |= bit;
    }
    return (struct smtpd_parse_verdict){SMTPD_PARSE_OK, NULL};
}

/* MAIL FROM:<path> [params] / RCPT TO:<path> [params]; a[0..n) is the argument. */
static struct smtpd_parse_verdict smtpd_parse_mail_rcpt(const uchar *a, size_t n, int is_mail, struct smtpd_command *out)
{
    const char *usage = is_mail ? TXT_MAIL : TXT_RCPT;
    const char *kw = is_mail ? "FROM:" : "TO:";
    size_t kwlen = strlen(kw), i;
    struct smtpd_parse_verdict v;

    if (n < kwlen || !smtpd_parse_ci_eq(a, kwlen, kw))
        return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, usage};
    i = kwlen;
    while (i < n && smtpd_parse_is_ws(a[i]))
        i++;
    if (i >= n || a[i] != '<')
        return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, usage};
    size_t path_start = i;
    v = smtpd_parse_path(a, n, &i, is_mail, !is_mail, usage, out->path);
    if (v.st != SMTPD_PARSE_OK)
        return v;
    size_t path_end = i;
    if (i < n && !smtpd_parse_is_ws(a[i]))
        return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, usage};
    v = smtpd_parse_params(a, n, i, is_mail, out);
    if (v.st != SMTPD_PARSE_OK)
        return v;
    /* non-ASCII in the reverse-path needs SMTPUTF8 (RFC 6531 3.4) */
    if (is_mail && !out->smtputf8 && smtpd_parse_has_8bit(a + path_start, path_end - path_start))
        return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, "Syntax: non-ASCII address needs SMTPUTF8"};
    return (struct smtpd_parse_verdict){SMTPD_PARSE_OK, NULL};
}

/* HELO/EHLO: exactly one Domain or address-literal. */
static struct smtpd_parse_verdict smtpd_parse_hello(const uchar *a, size_t n, int ehlo, struct smtpd_command *out)
{
    const char *usage = ehlo ? "Syntax: EHLO hostname" : "Syntax: HELO hostname";
    for (size_t i = 0; i < n; i++)
        if (smtpd_parse_is_ws(a[i]))
            return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, usage};
    int ok = (n && a[0] == '[') ? smtpd_parse_address_literal_valid(a, n) : smtpd_parse_domain_valid(a, n, 0, 1);
    if (!ok)
        return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, usage};
    memcpy(out->arg, a, n);
    out->arg[n] = '\0';
    return (struct smtpd_parse_verdict){SMTPD_PARSE_OK, NULL};
}

struct verb_def {
    const char *name;
    enum smtpd_verb verb;
    enum { ARG_NONE, ARG_OPTIONAL, ARG_REQUIRED, ARG_SPECIAL } arg;
    const char *usage;
};

static const struct verb_def verbs[] = {
    {"HELO", SMTPD_VERB_HELO, ARG_SPECIAL, "Syntax: HELO hostname"},
    {"EHLO", SMTPD_VERB_EHLO, ARG_SPECIAL, "Syntax: EHLO hostname"},
    {"MAIL", SMTPD_VERB_MAIL, ARG_SPECIAL, TXT_MAIL},
    {"RCPT", SMTPD_VERB_RCPT, ARG_SPECIAL, TXT_RCPT},
    {"DATA", SMTPD_VERB_DATA, ARG_NONE, "Syntax: DATA (no arguments)"},
    {"RSET", SMTPD_VERB_RSET, ARG_NONE, "Syntax: RSET (no arguments)"},
    {"NOOP", SMTPD_VERB_NOOP, ARG_OPTIONAL, NULL},
    {"QUIT", SMTPD_VERB_QUIT, ARG_NONE, "Syntax: QUIT (no arguments)"},
    {"VRFY", SMTPD_VERB_VRFY, ARG_REQUIRED, "Syntax: VRFY address"},
    {"HELP", SMTPD_VERB_HELP, ARG_OPTIONAL, NULL},
    {"STARTTLS", SMTPD_VERB_STARTTLS, ARG_NONE, "Syntax: STARTTLS (no arguments)"},
    {"BDAT", SMTPD_VERB_BDAT, ARG_REQUIRED, "Syntax: BDAT size [LAST]"},
    {"AUTH", SMTPD_VERB_AUTH, ARG_REQUIRED, "Syntax: AUTH mechanism [initial-response]"},
};

static struct smtpd_parse_verdict smtpd_parse_line(const uchar *s, size_t len, struct smtpd_command *out)
{
    /* strip the line end: CRLF, bare LF, or (tolerated) a lone trailing CR */
    if (len && s[len - 1] == '\n')
        len--;
    if (len && s[len - 1] == '\r')
        len--;
    if (len > SMTPD_COMMAND_LINE_MAX - 2)
        return (struct smtpd_parse_verdict){SMTPD_PARSE_LINE_TOO_LONG, "Syntax: line too long"};
    for (size_t i = 0; i < len; i++)
        if ((s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7F)
            return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, "Syntax: invalid character in command"};

    size_t vlen = 0;
    while (vlen < len && !smtpd_parse_is_ws(s[vlen]))
        vlen++;
    const struct verb_def *def = NULL;
    for (size_t k = 0; k < sizeof(verbs) / sizeof(verbs[0]); k++)
        if (smtpd_parse_ci_eq(s, vlen, verbs[k].name))
            def = &verbs[k];
    if (!def)
        return (struct smtpd_parse_verdict){SMTPD_PARSE_UNKNOWN_COMMAND, "Syntax: command not recognized"};
    out->verb = def->verb;

    /* the argument, without surrounding white space */
    size_t a = vlen, e = len;
    while (a < e && smtpd_parse_is_ws(s[a]))
        a++;
    while (e > a && smtpd_parse_is_ws(s[e - 1]))
        e--;
    const uchar *arg = s + a;
    size_t alen = e - a;

    switch (def->verb) {
    case SMTPD_VERB_HELO:
    case SMTPD_VERB_EHLO:
        if (alen == 0)
            return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, def->usage};
        return smtpd_parse_hello(arg, alen, def->verb == SMTPD_VERB_EHLO, out);
    case SMTPD_VERB_MAIL:
        return smtpd_parse_mail_rcpt(arg, alen, 1, out);
    case SMTPD_VERB_RCPT:
        return smtpd_parse_mail_rcpt(arg, alen, 0, out);
    default:
        break;
    }
    if (def->arg == ARG_NONE && alen)
        return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, def->usage};
    if (def->arg == ARG_REQUIRED && !alen)
        return (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, def->usage};
    memcpy(out->arg, arg, alen); /* alen <= SMTPD_COMMAND_LINE_MAX - 2 */
    out->arg[alen] = '\0';
    return (struct smtpd_parse_verdict){SMTPD_PARSE_OK, NULL};
}

enum smtpd_parse_status smtpd_parse_command(const char *line, size_t len, struct smtpd_command *out,
                                          const char **error_text)
{
    struct smtpd_parse_verdict v;
    memset(out, 0, sizeof(*out));
    if (!line && len)
        v = (struct smtpd_parse_verdict){SMTPD_PARSE_SYNTAX, "Syntax: invalid command"};
    else
        v = smtpd_parse_line((const uchar *)line, len, out);
    if (v.st != SMTPD_PARSE_OK) {
        /* keep the verb (servers may want it for logging) but no half-parsed data */
        enum smtpd_verb verb = out->verb;
        char ebuf[sizeof(out->error_buf)];
        int own = v.text == out->error_buf;
        if (own)
            memcpy(ebuf, out->error_buf, sizeof(ebuf));
        memset(out, 0, sizeof(*out));
        out->verb = verb;
        if (own) {
            memcpy(out->error_buf, ebuf, sizeof(ebuf));
            v.text = out->error_buf;
        }
    }
    if (error_text)
        *error_text = v.st == SMTPD_PARSE_OK ? NULL : v.text;
    return v.st;
}

const char *smtpd_address_domain(const char *address)
{
    if (!address)
        return NULL;
    const char *p = address;
    if (*p == '"') {
        for (p++; *p && *p != '"'; p++)
            if (*p == '\\' && p[1])
                p++;
        if (*p != '"')
            return NULL;
        p++;
    } else {
        while (*p && *p != '@')
            p++;
    }
    if (*p != '@' || !p[1])
        return NULL;
    return p + 1;
}
