/* config_schema.h: path-aware typed getters over Jansson objects, shared by the config loader's files. */
#ifndef VIPMTA_CORE_CONFIG_SCHEMA_H
#define VIPMTA_CORE_CONFIG_SCHEMA_H

#include <jansson.h>
#include <stddef.h>
#include "config_errors.h"

#define CONFIG_PATH_MAX 512

struct config_ctx {
    const char *file;           /* the file name used in messages */
    const char *dir;            /* where relative paths are resolved from */
    struct config_errors *errs;
    size_t errors;              /* errors reported so far */
};

/* Reports "FILE: PATH: message" (just "FILE: message" for an empty path). */
void config_error(struct config_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* PATH.key, or PATH."key" when the key is not a plain word. */
void config_path_key(char *out, const char *parent, const char *key);
/* PATH[i] */
void config_path_index(char *out, const char *parent, size_t i);
/* "object", "string", ... for messages */
const char *config_type_name(const json_t *v);
/* Every key of `obj` must be in `allowed` (NULL-terminated); 0 when so. */
int config_check_keys(struct config_ctx *c, const json_t *obj, const char *path,
                   const char *const *allowed);
/* Typed getters: absent keys leave *out alone and return 0; a wrong type or
 * value is reported and returns -1. */
int config_get_string(struct config_ctx *c, const json_t *obj, const char *key, const char *path,
                   char **out);
int config_get_uint(struct config_ctx *c, const json_t *obj, const char *key, const char *path,
                 unsigned long long min, unsigned long long max, unsigned long long *out);
int config_get_bool(struct config_ctx *c, const json_t *obj, const char *key, const char *path,
                 int *out);
/* A string value at `path` (not a key lookup). */
int config_want_string(struct config_ctx *c, const json_t *v, const char *path, char **out);
/* Validates one string of a list; reports its own error and returns non-zero when bad. */
typedef int (*config_string_check_fn)(struct config_ctx *c, const char *path, const char *value);
/* A list of strings `v` at `path` (NULL `v`: absent, nothing changes). Replaces
 * *out / *count with the valid items (each checked by `check` unless NULL);
 * the array is NULL-terminated. Returns 0 when every item was valid. */
int config_get_string_list(struct config_ctx *c, const json_t *v, const char *path, char ***out,
                        size_t *count, config_string_check_fn check);
/* Joins `path` onto the config directory when relative (malloc'd). */
char *config_resolve_path(const struct config_ctx *c, const char *path);

#endif
