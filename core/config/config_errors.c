/* config_errors.c: a growable list of user-facing error messages. */
#include "config_errors.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* Messages quote what the user wrote (keys, values, module names), which may
 * hold control characters: a newline would split one error over two lines of
 * `vipmta -t` output, an escape sequence would reach the terminal. Writes them
 * as \n, \r, \t or \xHH instead. Takes `msg`; returns it or its escaped copy. */
static char *config_errors_errors_escape(char *msg)
{
    size_t n = 0, controls = 0;

    for (const unsigned char *p = (const unsigned char *)msg; *p; p++, n++)
        if (*p < 0x20 || *p == 0x7F)
            controls++;
    if (!controls)
        return msg;
    char *out = malloc(n + 3 * controls + 1);
    if (!out) {
        for (unsigned char *p = (unsigned char *)msg; *p; p++)
            if (*p < 0x20 || *p == 0x7F)
                *p = '?';
        return msg;
    }
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *o++ = '\\';
            *o++ = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
        } else if (*p < 0x20 || *p == 0x7F) {
            static const char hex[] = "0123456789abcdef";
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 0xF];
        } else {
            *o++ = (char)*p;
        }
    }
    *o = '\0';
    free(msg);
    return out;
}

void config_errors_add(struct config_errors *errs, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg = NULL;
    if (msg)
        msg = config_errors_errors_escape(msg);
    if (errs->count == errs->capacity) {
        size_t cap = errs->capacity ? errs->capacity * 2 : 8;
        char **grown = realloc(errs->messages, cap * sizeof(*grown));
        if (!grown) {
            free(msg);
            return;
        }
        errs->messages = grown;
        errs->capacity = cap;
    }
    errs->messages[errs->count++] = msg ? msg : strdup("(out of memory formatting an error)");
}

void config_errors_print(const struct config_errors *errs, FILE *out, const char *prefix)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(out, "%s%s\n", prefix ? prefix : "", errs->messages[i] ? errs->messages[i] : "");
}

void config_errors_clear(struct config_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        free(errs->messages[i]);
    free(errs->messages);
    errs->messages = NULL;
    errs->count = errs->capacity = 0;
}
