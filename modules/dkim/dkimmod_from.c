/* dkimmod_from.c: the domain of the RFC5322.From address, the one DMARC aligns with (the field found here, its address parsed by libopendkim). */
#include "dkimmod.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dkim.h>

/* Start and end (past the CRLF of its last line) of the first From field. */
static int find_from(const char *h, size_t len, size_t *start, size_t *end)
{
    size_t pos = 0;
    while (pos < len) {
        size_t eol = pos;
        while (eol < len && h[eol] != '\n')
            eol++;
        /* the field ends at the first line not starting with white space */
        size_t next = eol < len ? eol + 1 : len;
        while (next < len && (h[next] == ' ' || h[next] == '\t')) {
            while (next < len && h[next] != '\n')
                next++;
            next = next < len ? next + 1 : len;
        }
        if (eol == pos || (eol == pos + 1 && h[pos] == '\r'))
            return -1; /* the empty line: end of the header section */
        size_t n = 0;
        while (pos + n < eol && h[pos + n] != ':')
            n++;
        /* the name may be followed by white space before the colon (obs-syntax) */
        size_t name = n;
        while (name > 0 && (h[pos + name - 1] == ' ' || h[pos + name - 1] == '\t'))
            name--;
        if (pos + n < eol && name == 4 && strncasecmp(h + pos, "from", 4) == 0) {
            *start = pos + n + 1;
            *end = next;
            return 0;
        }
        pos = next;
    }
    return -1;
}

static int domain_ok(const char *d)
{
    size_t n = strlen(d);
    if (n == 0 || n > DKIMMOD_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return 0;
    }
    return d[0] != '.' && strstr(d, "..") == NULL;
}

int dkimmod_from_domain(const char *headers, size_t len, char *out, size_t size)
{
    size_t start, end;
    if (find_from(headers, len, &start, &end) != 0)
        return -1;
    /* the value unfolded: line breaks dropped, bare control characters as spaces */
    unsigned char *value = malloc(end - start + 1);
    if (!value)
        return -1;
    size_t n = 0;
    for (size_t i = start; i < end; i++) {
        unsigned char c = (unsigned char)headers[i];
        if (c == '\r' || c == '\n')
            continue;
        value[n++] = c == '\t' ? ' ' : c;
    }
    value[n] = '\0';
    unsigned char *user = NULL, *domain = NULL;
    int rc = -1;
    if (dkim_mail_parse(value, &user, &domain) == 0 && domain) {
        char *d = (char *)domain;
        size_t dl = strlen(d);
        while (dl > 0 && d[dl - 1] == '.')
            d[--dl] = '\0';
        for (size_t i = 0; i < dl; i++)
            d[i] = (char)tolower((unsigned char)d[i]);
        if (domain_ok(d) && dl < size) {
            memcpy(out, d, dl + 1);
            rc = 0;
        }
    }
    free(value);
    return rc;
}
