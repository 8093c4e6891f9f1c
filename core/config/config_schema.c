/* config_schema.c: path-aware typed getters over Jansson objects with clear error messages. */
#include "config_schema.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_error(struct config_ctx *c, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (path && *path)
        config_errors_add(c->errs, "%s: %s: %s", c->file, path, msg);
    else
        config_errors_add(c->errs, "%s: %s", c->file, msg);
    c->errors++;
}

static int config_plain_word(const char *key)
{
    if (!*key)
        return 0;
    for (const char *p = key; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            return 0;
    return 1;
}

void config_path_key(char *out, const char *parent, const char *key)
{
    const char *dot = (parent && *parent) ? "." : "";
    if (config_plain_word(key))
        snprintf(out, CONFIG_PATH_MAX, "%s%s%s", parent ? parent : "", dot, key);
    else
        snprintf(out, CONFIG_PATH_MAX, "%s%s\"%s\"", parent ? parent : "", dot, key);
}

void config_path_index(char *out, const char *parent, size_t i)
{
    snprintf(out, CONFIG_PATH_MAX, "%s[%zu]", parent ? parent : "", i);
}

const char *config_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "a list";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "something else";
}

int config_check_keys(struct config_ctx *c, const json_t *obj, const char *path,
                   const char *const *allowed)
{
    const char *key;
    json_t *value;
    int rc = 0;

    json_object_foreach((json_t *)obj, key, value) {
        int known = 0;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0)
                known = 1;
        if (known)
            continue;
        char list[512] = "";
        size_t used = 0;
        for (size_t i = 0; allowed[i] && used < sizeof(list); i++)
            used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
                                     allowed[i]);
        config_error(c, path, "unknown key \"%s\" (allowed: %s)", key, list);
        rc = -1;
    }
    return rc;
}

int config_want_string(struct config_ctx *c, const json_t *v, const char *path, char **out)
{
    if (!json_is_string(v)) {
        config_error(c, path, "expected a string, found %s", config_type_name(v));
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        config_error(c, path, "the string contains a NUL character (\\u0000): remove it");
        return -1;
    }
    free(*out);
    *out = strdup(json_string_value(v));
    return *out ? 0 : -1;
}

int config_get_string(struct config_ctx *c, const json_t *obj, const char *key, const char *path,
                   char **out)
{
    json_t *v = json_object_get(obj, key);
    char p[CONFIG_PATH_MAX];

    if (!v)
        return 0;
    config_path_key(p, path, key);
    if (json_is_null(v))
        return 0;
    return config_want_string(c, v, p, out);
}

int config_get_uint(struct config_ctx *c, const json_t *obj, const char *key, const char *path,
                 unsigned long long min, unsigned long long max, unsigned long long *out)
{
    json_t *v = json_object_get(obj, key);
    char p[CONFIG_PATH_MAX];

    if (!v)
        return 0;
    config_path_key(p, path, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        (unsigned long long)json_integer_value(v) < min ||
        (unsigned long long)json_integer_value(v) > max) {
        if (json_is_integer(v))
            config_error(c, p, "expected an integer from %llu to %llu, found %" JSON_INTEGER_FORMAT,
                      min, max, json_integer_value(v));
        else
            config_error(c, p, "expected an integer from %llu to %llu, found %s", min, max,
                      config_type_name(v));
        return -1;
    }
    *out = (unsigned long long)json_integer_value(v);
    return 0;
}

int config_get_bool(struct config_ctx *c, const json_t *obj, const char *key, const char *path,
                 int *out)
{
    json_t *v = json_object_get(obj, key);
    char p[CONFIG_PATH_MAX];

    if (!v)
        return 0;
    config_path_key(p, path, key);
    if (!json_is_boolean(v)) {
        config_error(c, p, "expected true or false, found %s", config_type_name(v));
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int config_get_string_list(struct config_ctx *c, const json_t *v, const char *path, char ***out,
                        size_t *count, config_string_check_fn check)
{
    size_t i;
    json_t *item;
    int rc = 0;

    if (!v)
        return 0;
    if (!json_is_array(v)) {
        config_error(c, path, "expected a list of strings, found %s", config_type_name(v));
        return -1;
    }
    for (i = 0; *out && i < *count; i++)
        free((*out)[i]);
    free(*out);
    *count = 0;
    *out = calloc(json_array_size(v) + 1, sizeof(char *));
    if (!*out) {
        config_error(c, path, "out of memory");
        return -1;
    }
    json_array_foreach(v, i, item) {
        char p[CONFIG_PATH_MAX];
        char *s = NULL;
        config_path_index(p, path, i);
        if (config_want_string(c, item, p, &s) != 0) {
            rc = -1;
            continue;
        }
        if (check && check(c, p, s) != 0) {
            free(s);
            rc = -1;
            continue;
        }
        (*out)[(*count)++] = s;
    }
    return rc;
}

char *config_resolve_path(const struct config_ctx *c, const char *path)
{
    char *out = NULL;

    if (!path)
        return NULL;
    if (path[0] == '/' || !c->dir || !*c->dir)
        return strdup(path);
    if (asprintf(&out, "%s/%s", c->dir, path) < 0)
        return NULL;
    return out;
}
