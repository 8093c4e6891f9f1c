/* spool_env.c: the spool's text formats: ID.env (envelope) writing and parsing, ID.st (outcomes) reading. */
#include "spool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SPOOL_ENV_VERSION 1
/* ID.env files larger than this are refused as corrupt (1000s of recipients fit easily). */
#define SPOOL_ENV_MAX (64u * 1024 * 1024)

static const char spool_hex[] = "0123456789abcdef";

void spool_name(char *buf, const char *id, const char *ext)
{
    memcpy(buf, id, SPOOL_ID_LEN);
    buf[SPOOL_ID_LEN] = '.';
    strcpy(buf + SPOOL_ID_LEN + 1, ext);
}

int spool_id_valid(const char *s)
{
    for (int i = 0; i < SPOOL_ID_LEN; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[SPOOL_ID_LEN] == '\0' || s[SPOOL_ID_LEN] == '.';
}

int spool_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- growable buffer ---- */

int spool_buf_reserve(struct spool_buf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len < more)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        errno = ENOMEM;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

int spool_buf_add(struct spool_buf *b, const char *s, size_t n)
{
    if (spool_buf_reserve(b, n) != 0)
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

void spool_buf_free(struct spool_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- writing ---- */

/* Bytes that must not appear raw in a value: controls (CR, LF...), DEL and '%'. */
static int spool_needs_escape(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '%';
}

/* Appends "key value\n", escaping the value as %XX where needed. */
static int spool_env_line(struct spool_buf *b, const char *key, const char *value)
{
    size_t klen = strlen(key), vlen = value ? strlen(value) : 0;
    if (spool_buf_reserve(b, klen + 2 + vlen * 3) != 0)
        return -1;
    char *o = b->data + b->len;
    memcpy(o, key, klen);
    o += klen;
    *o++ = ' ';
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if (spool_needs_escape(c)) {
            *o++ = '%';
            *o++ = spool_hex[c >> 4];
            *o++ = spool_hex[c & 15];
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '\n';
    b->len = (size_t)(o - b->data);
    return 0;
}

int spool_st_binding_line(char *buf, size_t size, const char *binding, const char *group)
{
    struct spool_buf b = {0};
    /* "M BINDING [GROUP]": the values escaped as the envelope's, spaces too */
    int rc = spool_buf_add(&b, "M", 1);
    const char *parts[2] = {binding, group};
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (!parts[i])
            continue;
        rc |= spool_buf_add(&b, " ", 1);
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p && rc == 0; p++) {
            char esc[3] = {'%', spool_hex[*p >> 4], spool_hex[*p & 15]};
            if (spool_needs_escape(*p) || *p == ' ')
                rc |= spool_buf_add(&b, esc, 3);
            else
                rc |= spool_buf_add(&b, (const char *)p, 1);
        }
    }
    rc |= spool_buf_add(&b, "\n", 1);
    int len = rc || b.len >= size ? -1 : (int)b.len;
    if (len > 0)
        memcpy(buf, b.data, b.len);
    spool_buf_free(&b);
    return len;
}

/* One "header" line per added field (a field ends at a CRLF that does not
 * fold: one not followed by a space or a tab), without its last CRLF. */
static int spool_env_headers(struct spool_buf *out, const char *h, size_t len)
{
    size_t start = 0;
    int rc = 0;
    for (size_t i = 0; h && i + 1 < len && rc == 0; i++) {
        if (h[i] != '\r' || h[i + 1] != '\n' || (i + 2 < len && (h[i + 2] == ' ' || h[i + 2] == '\t')))
            continue;
        char *field = strndup(h + start, i - start);
        rc |= field ? spool_env_line(out, "header", field) : -1;
        free(field);
        start = i + 2;
        i++;
    }
    return rc;
}

int spool_header_field_ok(const char *f, size_t n)
{
    size_t i = 0;
    while (i < n && f[i] != ':') {
        unsigned char c = (unsigned char)f[i++];
        if (c < 33 || c > 126)
            return 0;
    }
    if (i == 0 || i == n)
        return 0;
    int content = 1; /* the line so far has more than white space (the first has the name) */
    for (; i < n; i++) {
        unsigned char c = (unsigned char)f[i];
        if (c == '\r') {
            /* a line break folds: CRLF then a space or a tab, after a line
             * and before one that hold more than white space */
            if (!content || i + 2 >= n || f[i + 1] != '\n' || (f[i + 2] != ' ' && f[i + 2] != '\t'))
                return 0;
            i++;
            content = 0;
        } else if ((c < 32 && c != '\t') || c > 126) {
            return 0;
        } else if (c != ' ' && c != '\t') {
            content = 1;
        }
    }
    return content;
}

int spool_env_format(const struct spool_envelope *env, struct spool_buf *out)
{
    char num[64];
    int rc = 0;
    snprintf(num, sizeof(num), "%d", SPOOL_ENV_VERSION);
    rc |= spool_env_line(out, "version", num);
    rc |= spool_env_line(out, "id", env->id);
    snprintf(num, sizeof(num), "%lld", (long long)env->received);
    rc |= spool_env_line(out, "received", num);
    rc |= spool_env_line(out, "client", env->client_addr);
    rc |= spool_env_line(out, "helo", env->helo);
    rc |= spool_env_line(out, "sender", env->sender);
    if (env->binding_group)
        rc |= spool_env_line(out, "binding_group", env->binding_group);
    if (env->binding)
        rc |= spool_env_line(out, "binding", env->binding);
    if (env->auth_user)
        rc |= spool_env_line(out, "auth", env->auth_user);
    rc |= spool_env_line(out, "dsn", env->is_dsn ? "1" : "0");
    if (env->smtputf8)
        rc |= spool_env_line(out, "smtputf8", "1");
    if (env->eightbit)
        rc |= spool_env_line(out, "8bit", "1");
    rc |= spool_env_headers(out, env->added_headers, env->added_headers_len);
    for (size_t i = 0; i < env->rcpt_count && rc == 0; i++)
        rc |= spool_env_line(out, "rcpt", env->rcpts[i].address);
    snprintf(num, sizeof(num), "%" PRIu64 " %08" PRIx32, env->body_size, env->body_crc);
    rc |= spool_env_line(out, "end", num);
    return rc ? -1 : 0;
}

/* ---- parsing ---- */

static int spool_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes %XX in place over [v, end), NUL-terminates; -1 on a bad escape or %00. */
static int spool_unescape(char *v, char *end)
{
    char *o = v;
    for (char *p = v; p < end; p++) {
        if (*p == '%') {
            if (end - p < 3)
                return -1;
            int hi = spool_hexval(p[1]), lo = spool_hexval(p[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            *o++ = (char)(hi << 4 | lo);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return 0;
}

/* Unsigned decimal over the whole of [s, end); -1 when not one. */
static int spool_parse_u64(const char *s, const char *end, uint64_t *out)
{
    uint64_t v = 0;
    if (s == end || end - s > 20)
        return -1;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static int spool_key_is(const char *k, size_t klen, const char *want)
{
    return strlen(want) == klen && memcmp(k, want, klen) == 0;
}

#define SPOOL_FAIL(...) do { snprintf(errbuf, errlen, __VA_ARGS__); goto fail; } while (0)

struct spool_envelope *spool_env_parse(char *text, size_t len, char *errbuf, size_t errlen)
{
    struct spool_envelope *env = NULL;
    size_t lines = 0;
    int have_version = 0, have_id = 0, have_received = 0, have_sender = 0, have_end = 0;

    text[len] = '\0';
    if (len == 0)
        SPOOL_FAIL("empty envelope");
    if (text[len - 1] != '\n')
        SPOOL_FAIL("torn envelope (last line incomplete)");
    for (const char *p = text; (p = memchr(p, '\n', (size_t)(text + len - p))); p++)
        lines++;
    env = calloc(1, sizeof(*env));
    if (!env || !(env->rcpts = calloc(lines, sizeof(*env->rcpts))))
        SPOOL_FAIL("out of memory");
    env->strings = text;

    char *line = text;
    size_t lineno = 0;
    while (line < text + len) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        lineno++;
        if (have_end)
            SPOOL_FAIL("data after the end line (line %zu)", lineno);
        char *sp = memchr(line, ' ', (size_t)(nl - line));
        if (!sp)
            SPOOL_FAIL("line %zu: no value", lineno);
        size_t klen = (size_t)(sp - line);
        for (size_t i = 0; i < klen; i++)
            if (!((line[i] >= 'a' && line[i] <= 'z') || line[i] == '_'))
                SPOOL_FAIL("line %zu: garbage key", lineno);
        char *v = sp + 1;
        if (lineno == 1 && !spool_key_is(line, klen, "version"))
            SPOOL_FAIL("first line is not the version");
        if (spool_key_is(line, klen, "rcpt")) {
            if (spool_unescape(v, nl) != 0 || !*v)
                SPOOL_FAIL("line %zu: bad recipient", lineno);
            env->rcpts[env->rcpt_count++].address = v;
        } else if (spool_key_is(line, klen, "end")) {
            char *sp2 = memchr(v, ' ', (size_t)(nl - v));
            uint64_t crc;
            if (!sp2 || spool_parse_u64(v, sp2, &env->body_size) != 0 || nl - (sp2 + 1) != 8)
                SPOOL_FAIL("invalid end line");
            crc = 0;
            for (char *h = sp2 + 1; h < nl; h++) {
                int d = spool_hexval(*h);
                if (d < 0)
                    SPOOL_FAIL("invalid end line");
                crc = crc << 4 | (uint64_t)d;
            }
            env->body_crc = (uint32_t)crc;
            have_end = 1;
        } else {
            if (spool_unescape(v, nl) != 0)
                SPOOL_FAIL("line %zu: bad escape", lineno);
            uint64_t n;
            if (spool_key_is(line, klen, "version")) {
                if (spool_parse_u64(v, v + strlen(v), &n) != 0 || n != SPOOL_ENV_VERSION)
                    SPOOL_FAIL("unsupported version \"%.20s\"", v);
                have_version = 1;
            } else if (spool_key_is(line, klen, "id")) {
                if (strlen(v) != SPOOL_ID_LEN || !spool_id_valid(v))
                    SPOOL_FAIL("invalid id");
                memcpy(env->id, v, SPOOL_ID_LEN + 1);
                have_id = 1;
            } else if (spool_key_is(line, klen, "received")) {
                if (spool_parse_u64(v, v + strlen(v), &n) != 0 || n > (uint64_t)INT64_MAX)
                    SPOOL_FAIL("invalid received time");
                env->received = (time_t)n;
                have_received = 1;
            } else if (spool_key_is(line, klen, "client")) {
                env->client_addr = v;
            } else if (spool_key_is(line, klen, "helo")) {
                env->helo = v;
            } else if (spool_key_is(line, klen, "sender")) {
                env->sender = v;
                have_sender = 1;
            } else if (spool_key_is(line, klen, "binding_group")) {
                env->binding_group = v;
            } else if (spool_key_is(line, klen, "binding")) {
                env->binding = v;
            } else if (spool_key_is(line, klen, "auth")) {
                env->auth_user = v;
            } else if (spool_key_is(line, klen, "dsn")) {
                if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
                    SPOOL_FAIL("invalid dsn flag");
                env->is_dsn = v[0] == '1';
            } else if (spool_key_is(line, klen, "smtputf8")) {
                if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
                    SPOOL_FAIL("invalid smtputf8 flag");
                env->smtputf8 = v[0] == '1';
            } else if (spool_key_is(line, klen, "8bit")) {
                if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)
                    SPOOL_FAIL("invalid 8bit flag");
                env->eightbit = v[0] == '1';
            } else if (spool_key_is(line, klen, "header")) {
                size_t flen = strlen(v);
                if (!spool_header_field_ok(v, flen))
                    SPOOL_FAIL("line %zu: bad header field", lineno);
                char *g = realloc(env->added_headers, env->added_headers_len + flen + 3);
                if (!g)
                    SPOOL_FAIL("out of memory");
                env->added_headers = g;
                memcpy(g + env->added_headers_len, v, flen);
                memcpy(g + env->added_headers_len + flen, "\r\n", 3);
                env->added_headers_len += flen + 2;
            }
            /* other well-formed keys: written by a newer version 1 writer; ignored */
        }
        line = nl + 1;
    }
    if (!have_end)
        SPOOL_FAIL("torn envelope (no end line)");
    if (!have_version || !have_id || !have_received || !have_sender)
        SPOOL_FAIL("missing %s", !have_version ? "version" : !have_id ? "id" :
                                 !have_received ? "received time" : "sender");
    if (env->rcpt_count == 0)
        SPOOL_FAIL("no recipients");
    return env;
fail:
    if (env)
        spool_envelope_free(env);
    else
        free(text);
    return NULL;
}

/* Reads the whole of `fd` into a malloc'd buffer with one spare byte. */
static char *spool_slurp(int fd, size_t max, size_t *len_out)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return NULL;
    if ((uint64_t)st.st_size > max) {
        errno = EFBIG;
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    for (;;) {
        if (len + 1 >= cap) {
            if (cap > max) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            char *g = realloc(buf, cap * 2);
            if (!g) {
                free(buf);
                return NULL;
            }
            buf = g;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *len_out = len;
    return buf;
}

struct spool_envelope *spool_env_load(const char *id, char *errbuf, size_t errlen)
{
    char name[SPOOL_ID_LEN + 8];
    size_t len;
    spool_name(name, id, "env");
    int fd = openat(spool_queue_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(errbuf, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    char *text = spool_slurp(fd, SPOOL_ENV_MAX, &len);
    int saved = errno;
    close(fd);
    if (!text) {
        snprintf(errbuf, errlen, "cannot read: %s", strerror(saved));
        errno = saved;
        return NULL;
    }
    struct spool_envelope *env = spool_env_parse(text, len, errbuf, errlen);
    if (!env) {
        errno = EINVAL;
        return NULL;
    }
    if (strcmp(env->id, id) != 0) {
        snprintf(errbuf, errlen, "envelope names id %s", env->id);
        spool_envelope_free(env);
        errno = EINVAL;
        return NULL;
    }
    return env;
}

/* The F records seen so far (bounces in progress); a later T for the same
 * recipient cancels its F (the bounce did not happen: it was retried). */
struct spool_st_bounces {
    struct spool_st_bounce *v;
    size_t n, cap;
};

static void spool_st_bounce_add(struct spool_st_bounces *b, unsigned rcpt, const char *dsn)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i].rcpt == rcpt) {
            memcpy(b->v[i].dsn, dsn, SPOOL_ID_LEN + 1);
            return;
        }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4;
        struct spool_st_bounce *g = realloc(b->v, cap * sizeof(*g));
        if (!g)
            return; /* out of memory: the recipient stays pending (bounced again) */
        b->v = g;
        b->cap = cap;
    }
    b->v[b->n].rcpt = rcpt;
    memcpy(b->v[b->n].dsn, dsn, SPOOL_ID_LEN + 1);
    b->n++;
}

static void spool_st_bounce_cancel(struct spool_st_bounces *b, unsigned rcpt)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->v[i].rcpt == rcpt)
            b->v[i] = b->v[--b->n];
}

/* "F idx dsnid": a bounce in progress (see spool_bounce.c). */
static void spool_st_bounce_line(struct spool_envelope *env, const char *p, const char *end,
                                 struct spool_st_bounces *b)
{
    const char *sp = memchr(p + 2, ' ', (size_t)(end - (p + 2)));
    uint64_t idx;
    char dsn[SPOOL_ID_LEN + 1];
    if (!sp || spool_parse_u64(p + 2, sp, &idx) != 0 || idx >= env->rcpt_count ||
        end - (sp + 1) != SPOOL_ID_LEN)
        return;
    memcpy(dsn, sp + 1, SPOOL_ID_LEN);
    dsn[SPOOL_ID_LEN] = '\0';
    if (spool_id_valid(dsn) && env->rcpts[idx].state == SPOOL_RCPT_PENDING)
        spool_st_bounce_add(b, (unsigned)idx, dsn);
}

/* "M BINDING [GROUP]": the message moved to BINDING (within GROUP, or
 * pinned to it): the envelope's binding and group from now on. */
static void spool_st_binding(struct spool_envelope *env, const char *p, const char *end)
{
    size_t n = (size_t)(end - (p + 2));
    char *text = malloc(n + 1);
    if (!text)
        return; /* out of memory: the envelope's binding, as before the move */
    memcpy(text, p + 2, n);
    text[n] = '\0';
    char *sp = strchr(text, ' ');
    if (sp)
        *sp++ = '\0';
    if (!*text || spool_unescape(text, text + strlen(text)) != 0 ||
        (sp && (!*sp || spool_unescape(sp, sp + strlen(sp)) != 0))) {
        free(text);
        return; /* garbage: ignored */
    }
    if (env->strings) {
        free(env->moved);
        env->moved = text; /* both names point into it */
        env->binding = text;
        env->binding_group = sp;
        return;
    }
    char *b = strdup(text), *g = sp ? strdup(sp) : NULL;
    free(text);
    if (!b || (sp && !g)) {
        free(b);
        free(g);
        return;
    }
    free(env->binding);
    free(env->binding_group);
    env->binding = b;
    env->binding_group = g;
}

/* One "D idx time" / "B idx time" / "T idx attempts next" / "F idx dsnid" /
 * "M binding [group]" line, [p, end) without the newline. */
static void spool_st_line(struct spool_envelope *env, const char *p, const char *end,
                          struct spool_st_bounces *b)
{
    uint64_t f[3];
    int nf = 0;
    if (end - p < 3 || p[1] != ' ')
        return;
    char kind = p[0];
    if (kind == 'F') {
        spool_st_bounce_line(env, p, end, b);
        return;
    }
    if (kind == 'M') {
        spool_st_binding(env, p, end);
        return;
    }
    const char *s = p + 2;
    while (s < end && nf < 3) {
        const char *e = memchr(s, ' ', (size_t)(end - s));
        if (!e)
            e = end;
        if (spool_parse_u64(s, e, &f[nf]) != 0)
            return;
        nf++;
        s = e + 1;
    }
    if (s < end || f[0] >= env->rcpt_count)
        return; /* garbage or an index out of range: ignored */
    struct spool_rcpt *r = &env->rcpts[f[0]];
    if ((kind == 'D' || kind == 'B') && nf == 2) {
        r->state = kind == 'D' ? SPOOL_RCPT_DELIVERED : SPOOL_RCPT_BOUNCED;
    } else if (kind == 'T' && nf == 3 && r->state == SPOOL_RCPT_PENDING) {
        r->attempts = f[1] > 0xffffffffu ? 0xffffffffu : (unsigned)f[1];
        r->next_attempt = f[2] > (uint64_t)INT64_MAX ? 0 : (time_t)f[2];
        spool_st_bounce_cancel(b, (unsigned)f[0]);
    }
}

int spool_st_apply(struct spool_envelope *env, int repair)
{
    char name[SPOOL_ID_LEN + 8];
    size_t len;
    struct spool_st_bounces bounces = {0};
    spool_name(name, env->id, "st");
    int fd = openat(spool_queue_fd, name, (repair ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    /* only a file of our own: a regular file with one link (recovery may
     * truncate it) */
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    char *text = spool_slurp(fd, SIZE_MAX / 4, &len);
    if (!text) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        spool_st_line(env, p, nl, &bounces);
        p = nl + 1;
    }
    /* a torn last record (crash while appending) is cut off, so that the
     * next append starts on a line of its own */
    if (repair && p < end && ftruncate(fd, (off_t)(p - text)) != 0) {
        int saved = errno;
        free(bounces.v);
        free(text);
        close(fd);
        errno = saved;
        return -1;
    }
    free(text);
    /* bounces in progress at the stop: bounced when their DSN made it */
    for (size_t i = 0; i < bounces.n;) {
        if (env->rcpts[bounces.v[i].rcpt].state != SPOOL_RCPT_PENDING)
            bounces.v[i] = bounces.v[--bounces.n];
        else
            i++;
    }
    if (bounces.n)
        spool_bounce_resolve(env, bounces.v, bounces.n, repair ? fd : -1);
    free(bounces.v);
    close(fd);
    return 0;
}

struct spool_envelope *spool_read_envelope(const char *id, char *errbuf, size_t errlen)
{
    if (!id || strlen(id) != SPOOL_ID_LEN || !spool_id_valid(id)) {
        snprintf(errbuf, errlen, "invalid queue id");
        errno = EINVAL;
        return NULL;
    }
    if (spool_queue_fd < 0) {
        snprintf(errbuf, errlen, "spool not initialised");
        errno = EBADF;
        return NULL;
    }
    struct spool_envelope *env = spool_env_load(id, errbuf, errlen);
    if (env && spool_st_apply(env, 0) != 0) {
        snprintf(errbuf, errlen, "cannot read %s.st: %s", id, strerror(errno));
        spool_envelope_free(env);
        return NULL;
    }
    return env;
}

void spool_envelope_free(struct spool_envelope *env)
{
    if (!env)
        return;
    if (env->strings) {
        free(env->strings);
    } else {
        free(env->client_addr);
        free(env->helo);
        free(env->sender);
        free(env->binding_group);
        free(env->binding);
        free(env->auth_user);
        for (size_t i = 0; env->rcpts && i < env->rcpt_count; i++)
            free(env->rcpts[i].address);
    }
    free(env->rcpts);
    free(env->added_headers);
    free(env->moved);
    free(env);
}
