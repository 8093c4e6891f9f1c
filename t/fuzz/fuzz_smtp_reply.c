/* fuzz_smtp_reply.c: libFuzzer harness for the SMTP reply parser (deliver_reply_parse, deliver_reply_format). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/deliver_reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise of the parser's contract is a crash, so the fuzzer keeps it. */
static void require(int ok)
{
    if (!ok)
        abort();
}

/* Is s[0..n) well-formed UTF-8 (shortest forms, no surrogates, at most U+10FFFF)? */
static int utf8_ok(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i], more, cp;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            more = 1, cp = c & 0x1F;
        else if (c >= 0xE0 && c <= 0xEF)
            more = 2, cp = c & 0x0F;
        else if (c >= 0xF0 && c <= 0xF4)
            more = 3, cp = c & 0x07;
        else
            return 0;
        if (n - i - 1 < more)
            return 0;
        for (unsigned k = 1; k <= more; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += more + 1;
    }
    return 1;
}

/* A client reading a complete reply in pieces must see "need more bytes" for
 * every shorter prefix, never MALFORMED or COMPLETE. Checks the short
 * prefixes and those around each line end (not all of them: quadratic). */
static void check_prefixes(const char *buf, size_t consumed, int is_ehlo)
{
    struct deliver_reply r;
    size_t used, checked = 0;

    for (size_t k = 0; k < consumed && checked < 64; k++) {
        int near_lf = buf[k] == '\n' || (k > 0 && buf[k - 1] == '\n') ||
                      (k + 1 < consumed && buf[k + 1] == '\n');
        if (k >= 8 && !near_lf)
            continue;
        checked++;
        require(deliver_reply_parse(buf, k, is_ehlo, &r, &used) == DELIVER_REPLY_INCOMPLETE);
    }
}

static void check_one(const char *buf, size_t size, int is_ehlo)
{
    struct deliver_reply r;
    size_t consumed = (size_t)-1;
    enum deliver_reply_status st = deliver_reply_parse(buf, size, is_ehlo, &r, &consumed);

    if (st != DELIVER_REPLY_COMPLETE) {
        require(st == DELIVER_REPLY_INCOMPLETE || st == DELIVER_REPLY_MALFORMED);
        require(consumed == 0);
        return;
    }
    require(consumed > 0 && consumed <= size && buf[consumed - 1] == '\n');
    require(r.code >= 200 && r.code <= 559 && r.line_count >= 1);
    require(memchr(r.text, '\0', sizeof(r.text)) != NULL);
    for (const char *p = r.text; *p; p++) {
        unsigned char c = (unsigned char)*p;
        require(!((c < 0x20 && c != '\t' && c != '\n') || c == 0x7F));
    }
    /* cutting a long text never splits a character */
    if (utf8_ok((const unsigned char *)buf, consumed))
        require(utf8_ok((const unsigned char *)r.text, strlen(r.text)));
    if (r.has_enhanced)
        require(r.enh_class == r.code / 100 && r.enh_subject >= 0 && r.enh_subject <= 999 &&
                r.enh_detail >= 0 && r.enh_detail <= 999);
    if (!is_ehlo)
        require(!r.ext_pipelining && !r.ext_size && !r.ext_8bitmime && !r.ext_smtputf8 &&
                !r.ext_enhancedstatuscodes && !r.ext_starttls && !r.ext_size_limit);
    check_prefixes(buf, consumed, is_ehlo);

    /* the summary: its length is what snprintf semantics promise, for any buffer size */
    int n = deliver_reply_format(&r, NULL, 0);
    require(n >= 3);
    char *full = malloc((size_t)n + 1);
    require(full != NULL);
    require(deliver_reply_format(&r, full, (size_t)n + 1) == n);
    require(strlen(full) == (size_t)n);
    require(!strchr(full, '\n') && !strchr(full, '\r')); /* one log line */
    char small[8];
    require(deliver_reply_format(&r, small, sizeof(small)) == n);
    require(strlen(small) == ((size_t)n < sizeof(small) ? (size_t)n : sizeof(small) - 1));
    require(strncmp(small, full, strlen(small)) == 0);
    free(full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so a read past `size` is an ASan report */
    char *buf = malloc(size ? size : 1);

    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    check_one(buf, size, 0);
    check_one(buf, size, 1);
    free(buf);
    return 0;
}
