/* plugin_options.c: the module kit's option values (vipmta_value over the JSON config) and checked readers with path-aware errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "vipmta_options.h"

/* A vipmta_value is the configuration's own JSON value. */
static const json_t *plugin_options_json(const vipmta_value *v)
{
    return (const json_t *)v;
}

static const vipmta_value *plugin_options_value(const json_t *j)
{
    return (const vipmta_value *)j;
}

enum vipmta_value_type vipmta_value_type(const vipmta_value *v)
{
    const json_t *j = plugin_options_json(v);
    if (!j)
        return VIPMTA_VALUE_ABSENT;
    switch (json_typeof(j)) {
    case JSON_OBJECT: return VIPMTA_VALUE_OBJECT;
    case JSON_ARRAY: return VIPMTA_VALUE_ARRAY;
    case JSON_STRING: return VIPMTA_VALUE_STRING;
    case JSON_INTEGER: return VIPMTA_VALUE_INTEGER;
    case JSON_REAL: return VIPMTA_VALUE_REAL;
    case JSON_TRUE:
    case JSON_FALSE: return VIPMTA_VALUE_BOOL;
    case JSON_NULL: return VIPMTA_VALUE_NULL;
    }
    return VIPMTA_VALUE_NULL;
}

const char *vipmta_value_describe(const vipmta_value *v)
{
    const json_t *j = plugin_options_json(v);
    if (!j)
        return "nothing";
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    }
    return "unknown";
}

const vipmta_value *vipmta_value_get(const vipmta_value *object, const char *key)
{
    const json_t *j = plugin_options_json(object);
    return json_is_object(j) && key ? plugin_options_value(json_object_get(j, key)) : NULL;
}

int vipmta_value_next(const vipmta_value *object, void **iter, const char **key,
                      const vipmta_value **value)
{
    json_t *j = (json_t *)plugin_options_json(object);
    if (!json_is_object(j) || !iter)
        return 0;
    *iter = *iter ? json_object_iter_next(j, *iter) : json_object_iter(j);
    if (!*iter)
        return 0;
    if (key)
        *key = json_object_iter_key(*iter);
    if (value)
        *value = plugin_options_value(json_object_iter_value(*iter));
    return 1;
}

size_t vipmta_value_size(const vipmta_value *v)
{
    const json_t *j = plugin_options_json(v);
    if (json_is_object(j))
        return json_object_size(j);
    return json_is_array(j) ? json_array_size(j) : 0;
}

const vipmta_value *vipmta_value_at(const vipmta_value *array, size_t i)
{
    return plugin_options_value(json_array_get(plugin_options_json(array), i));
}

const char *vipmta_value_string(const vipmta_value *v)
{
    return json_string_value(plugin_options_json(v));
}

size_t vipmta_value_string_length(const vipmta_value *v)
{
    const json_t *j = plugin_options_json(v);
    return json_is_string(j) ? json_string_length(j) : 0;
}

long long vipmta_value_integer(const vipmta_value *v)
{
    return (long long)json_integer_value(plugin_options_json(v));
}

double vipmta_value_real(const vipmta_value *v)
{
    return json_number_value(plugin_options_json(v));
}

int vipmta_value_bool(const vipmta_value *v)
{
    return json_is_true(plugin_options_json(v));
}

/* ---- paths ---- */

const char *vipmta_option_path(char *buf, size_t size, const char *prefix, const char *key)
{
    int n = prefix && *prefix ? snprintf(buf, size, "%s.%s", prefix, key)
                              : snprintf(buf, size, "%s", key);
    if (size && (n < 0 || (size_t)n >= size)) /* absurdly long names: keep the cut path */
        buf[size - 1] = '\0';
    return buf;
}

const char *vipmta_option_path_index(char *buf, size_t size, const char *prefix, size_t i)
{
    int n = snprintf(buf, size, "%s[%zu]", prefix ? prefix : "", i);
    if (size && (n < 0 || (size_t)n >= size))
        buf[size - 1] = '\0';
    return buf;
}

/* ---- checked readers ---- */

/* The value to read and its path: member `key` of `object`, or `object`
 * itself with key NULL. */
static const vipmta_value *plugin_options_member(const vipmta_value *object, const char *path,
                                                 const char *key, char *buf, size_t size,
                                                 const char **where)
{
    if (!key) {
        *where = path;
        return object;
    }
    *where = vipmta_option_path(buf, size, path, key);
    return vipmta_value_get(object, key);
}

int vipmta_option_int(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                      const char *key, long long min, long long max, long long *out)
{
    char buf[VIPMTA_OPTION_PATH_MAX];
    const char *p;
    const vipmta_value *v = plugin_options_member(object, path, key, buf, sizeof(buf), &p);
    if (!v)
        return 0;
    if (vipmta_value_type(v) != VIPMTA_VALUE_INTEGER) {
        vipmta_module_error(m, p, "must be an integer from %lld to %lld, not %s", min, max,
                            vipmta_value_describe(v));
        return -1;
    }
    long long x = vipmta_value_integer(v);
    if (x < min || x > max) {
        vipmta_module_error(m, p, "must be an integer from %lld to %lld, not %lld", min, max, x);
        return -1;
    }
    *out = x;
    return 1;
}

int vipmta_option_bool(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                       const char *key, int *out)
{
    char buf[VIPMTA_OPTION_PATH_MAX];
    const char *p;
    const vipmta_value *v = plugin_options_member(object, path, key, buf, sizeof(buf), &p);
    if (!v)
        return 0;
    if (vipmta_value_type(v) != VIPMTA_VALUE_BOOL) {
        vipmta_module_error(m, p, "must be true or false, not %s", vipmta_value_describe(v));
        return -1;
    }
    *out = vipmta_value_bool(v);
    return 1;
}

int vipmta_option_string(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                         const char *key, const char *what, const char **out)
{
    char buf[VIPMTA_OPTION_PATH_MAX];
    const char *p;
    const vipmta_value *v = plugin_options_member(object, path, key, buf, sizeof(buf), &p);
    if (!v)
        return 0;
    size_t len = vipmta_value_string_length(v);
    if (vipmta_value_type(v) != VIPMTA_VALUE_STRING || len == 0) {
        vipmta_module_error(m, p, "must be %s, not %s", what,
                            vipmta_value_type(v) == VIPMTA_VALUE_STRING
                                ? "an empty string"
                                : vipmta_value_describe(v));
        return -1;
    }
    if (strlen(vipmta_value_string(v)) != len) {
        vipmta_module_error(m, p, "must not contain a NUL character");
        return -1;
    }
    *out = vipmta_value_string(v);
    return 1;
}

/* "\"a\" or \"b\"", "\"a\", \"b\" or \"c\"" */
static void plugin_options_choices(const char *const *choices, char *buf, size_t size)
{
    size_t n = 0, used = 0;
    while (choices[n])
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s\"%s\"",
                                 i == 0 ? "" : i + 1 == n ? " or " : ", ", choices[i]);
}

int vipmta_option_choice(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                         const char *key, const char *const *choices, int *out)
{
    char buf[VIPMTA_OPTION_PATH_MAX];
    const char *p;
    const vipmta_value *v = plugin_options_member(object, path, key, buf, sizeof(buf), &p);
    if (!v)
        return 0;
    const char *s = vipmta_value_string(v);
    for (int i = 0; s && choices[i]; i++) {
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return 1;
        }
    }
    char list[256];
    plugin_options_choices(choices, list, sizeof(list));
    if (s)
        vipmta_module_error(m, p, "must be %s, not \"%s\"", list, s);
    else
        vipmta_module_error(m, p, "must be %s, not %s", list, vipmta_value_describe(v));
    return -1;
}

static int plugin_options_shape(vipmta_module_ctx *m, const vipmta_value *v, const char *path,
                                const char *what, enum vipmta_value_type want)
{
    if (vipmta_value_type(v) == want)
        return 0;
    vipmta_module_error(m, path, "must be %s, not %s", what, vipmta_value_describe(v));
    return -1;
}

int vipmta_option_object(vipmta_module_ctx *m, const vipmta_value *v, const char *path,
                         const char *what)
{
    return plugin_options_shape(m, v, path, what ? what : "an object", VIPMTA_VALUE_OBJECT);
}

int vipmta_option_array(vipmta_module_ctx *m, const vipmta_value *v, const char *path,
                        const char *what)
{
    return plugin_options_shape(m, v, path, what ? what : "an array", VIPMTA_VALUE_ARRAY);
}

int vipmta_module_check_keys(vipmta_module_ctx *m, const vipmta_value *object, const char *path,
                             const char *const *allowed)
{
    void *it = NULL;
    const char *key;
    int errors = 0;
    char list[512];
    size_t used = 0;

    if (vipmta_option_object(m, object, path, NULL) != 0)
        return 1;
    list[0] = '\0';
    for (size_t i = 0; allowed && allowed[i] && used < sizeof(list); i++)
        used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                 allowed[i]);
    while (vipmta_value_next(object, &it, &key, NULL)) {
        int ok = 0;
        for (size_t i = 0; allowed && allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            vipmta_module_error(m, path, "unknown key \"%s\" (allowed: %s)", key,
                                list[0] ? list : "none");
            errors++;
        }
    }
    return errors;
}
