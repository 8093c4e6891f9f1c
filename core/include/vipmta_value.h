/* vipmta_value.h: read-only values of a module's options (the JSON config), with typed getters and object/array walking. */
#ifndef VIPMTA_VALUE_H
#define VIPMTA_VALUE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One value of the configuration: an object, an array, a string, a number,
 * true, false or null. Opaque; owned by the configuration, valid while the
 * callback it was handed to runs (configure, reload): copy what you keep.
 * Every function accepts NULL (an absent value). */
typedef struct vipmta_value vipmta_value;

enum vipmta_value_type {
    VIPMTA_VALUE_ABSENT = 0, /* NULL: no such member */
    VIPMTA_VALUE_OBJECT,
    VIPMTA_VALUE_ARRAY,
    VIPMTA_VALUE_STRING,
    VIPMTA_VALUE_INTEGER,
    VIPMTA_VALUE_REAL,
    VIPMTA_VALUE_BOOL,
    VIPMTA_VALUE_NULL,
};

enum vipmta_value_type vipmta_value_type(const vipmta_value *v);
/* What the value is, for "must be X, not Y" messages: "an object", "an
 * array", "a string", "an integer", "a real number", "true", "false",
 * "null"; "nothing" for NULL. */
const char *vipmta_value_describe(const vipmta_value *v);

/* Objects: the member `key` (NULL when absent or v is no object). */
const vipmta_value *vipmta_value_get(const vipmta_value *object, const char *key);
/* Walks an object's members in the order the configuration lists them:
 * start with *iter = NULL; returns 1 with *key and *value set, 0 at the end.
 *     void *it = NULL; const char *k; const vipmta_value *v;
 *     while (vipmta_value_next(obj, &it, &k, &v)) ...                       */
int vipmta_value_next(const vipmta_value *object, void **iter, const char **key,
                      const vipmta_value **value);

/* Members of an object, elements of an array; 0 for anything else. */
size_t vipmta_value_size(const vipmta_value *v);
/* Arrays: element i (NULL when out of range or v is no array). */
const vipmta_value *vipmta_value_at(const vipmta_value *array, size_t i);

/* Scalars; each returns 0 / NULL / 0.0 when the value is of another type. */
const char *vipmta_value_string(const vipmta_value *v);
size_t vipmta_value_string_length(const vipmta_value *v); /* may hold NUL bytes */
long long vipmta_value_integer(const vipmta_value *v);
double vipmta_value_real(const vipmta_value *v);          /* integers too */
int vipmta_value_bool(const vipmta_value *v);             /* 1 for true */

#ifdef __cplusplus
}
#endif
#endif
