/* plugin_api.c: the core services modules call: identity, private data, option errors, logging. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "plugin_internal.h"

const char *vipmta_module_name(const vipmta_module_ctx *m)
{
    if (!m)
        return "(no module)";
    return m->name ? m->name : m->config_name;
}

int vipmta_module_index(const vipmta_module_ctx *m)
{
    return m ? (int)m->index : -1;
}

void vipmta_module_set_data(vipmta_module_ctx *m, void *data)
{
    if (m)
        m->data = data;
}

void *vipmta_module_get_data(const vipmta_module_ctx *m)
{
    return m ? m->data : NULL;
}

/* "modules[I].options", "modules[I].options.PATH" or "modules[I].options[N]..." */
static void plugin_api_option_prefix(const vipmta_module_ctx *m, const char *path, char *buf, size_t size)
{
    if (!path || !*path)
        snprintf(buf, size, "modules[%zu].options", m->index);
    else
        snprintf(buf, size, "modules[%zu].options%s%s", m->index, path[0] == '[' ? "" : ".",
                 path);
}

void vipmta_module_error(vipmta_module_ctx *m, const char *path, const char *fmt, ...)
{
    char prefix[512];
    char *msg = NULL;
    va_list ap;

    if (!m || !fmt)
        return;
    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (m->in_init && (!path || !*path)) /* not about an option: name the module and phase */
        snprintf(prefix, sizeof(prefix), "modules[%zu] (\"%s\"): init", m->index,
                 m->config_name);
    else
        plugin_api_option_prefix(m, path, prefix, sizeof(prefix));
    m->reported++;
    if (m->errs)
        config_errors_add(m->errs, "%s: %s", prefix, msg ? msg : "(out of memory formatting the error)");
    else /* outside configure and init (reload, hooks): the log is the only place to say it */
        log_write(vipmta_module_name(m), VIPMTA_LOG_ERROR, "%s: %s", prefix,
                  msg ? msg : "(out of memory formatting the error)");
    free(msg);
}

int vipmta_module_check_keys(vipmta_module_ctx *m, const json_t *object, const char *path,
                             const char *const *allowed)
{
    const char *key;
    json_t *value;
    int errors = 0;

    if (!m)
        return 0;
    if (!json_is_object(object)) {
        vipmta_module_error(m, path, "expected an object, found %s",
                            object ? (json_is_array(object) ? "a list"
                                      : json_is_string(object) ? "a string"
                                      : json_is_boolean(object) ? "a boolean"
                                      : json_is_null(object) ? "null" : "a number")
                                   : "nothing");
        return 1;
    }
    /* the allowed names, once, for every message */
    size_t len = 1;
    for (size_t i = 0; allowed && allowed[i]; i++)
        len += strlen(allowed[i]) + 2;
    char *list = malloc(len + 4);
    if (!list)
        return 0;
    list[0] = '\0';
    for (size_t i = 0; allowed && allowed[i]; i++) {
        if (i)
            strcat(list, ", ");
        strcat(list, allowed[i]);
    }
    if (!list[0])
        strcpy(list, "none");

    json_object_foreach((json_t *)object, key, value) {
        int ok = 0;
        for (size_t i = 0; allowed && allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok) {
            vipmta_module_error(m, path, "unknown key \"%s\" (allowed: %s)", key, list);
            errors++;
        }
    }
    free(list);
    return errors;
}

void vipmta_module_log(const struct vipmta_module_ctx *m, enum vipmta_log_level level,
                       const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_writev(vipmta_module_name(m), level, fmt, ap);
    va_end(ap);
}
