/* config_errors.h: a growable list of user-facing error messages (config, modules, -t). */
#ifndef VIPMTA_CORE_CONFIG_ERRORS_H
#define VIPMTA_CORE_CONFIG_ERRORS_H

#include <stddef.h>
#include <stdio.h>

struct config_errors {
    char **messages;
    size_t count;
    size_t capacity;
};

/* Appends one formatted message (no trailing newline). Control characters in
 * it (from quoted user input) are stored escaped: \n, \r, \t, \xHH. */
void config_errors_add(struct config_errors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints each message on its own line, prefixed with `prefix` when not NULL. */
void config_errors_print(const struct config_errors *errs, FILE *out, const char *prefix);
/* Frees the messages and empties the list. */
void config_errors_clear(struct config_errors *errs);

#endif
