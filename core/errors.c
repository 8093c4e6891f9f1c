/* errors.c: a growable list of user-facing error messages. */
#include "errors.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void errors_add(struct vipmta_errors *errs, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    int n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg = NULL;
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

void errors_print(const struct vipmta_errors *errs, FILE *out, const char *prefix)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(out, "%s%s\n", prefix ? prefix : "", errs->messages[i] ? errs->messages[i] : "");
}

void errors_clear(struct vipmta_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        free(errs->messages[i]);
    free(errs->messages);
    errs->messages = NULL;
    errs->count = errs->capacity = 0;
}
