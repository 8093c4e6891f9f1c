/* config_ops.c: the operations keys of the config: log_format, log_file, user, group, run_as_root. */
#include "config.h"
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

/* A user or group name as getpwnam/getgrnam take it: no ':', '/', spaces or
 * control characters, not all digits (numeric ids are not accepted: a name
 * says what is meant). */
static int config_ops_name_ok(const char *s)
{
    int digits = 1;

    if (!*s || strlen(s) > 64)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == ':' || *p == '/' || *p == 0x7f)
            return 0;
        if (*p < '0' || *p > '9')
            digits = 0;
    }
    return !digits;
}

static void config_ops_name(struct config_ctx *c, const json_t *root, const char *key, char **out)
{
    if (config_get_string(c, root, key, "", out) != 0 || !*out)
        return;
    const char *what = strcmp(key, "user") == 0 ? "user" : "group";
    if (**out && strspn(*out, "0123456789") == strlen(*out)) {
        config_error(c, key, "expected a %s name, found the number \"%s\": give the name (like "
                  "\"vipmta\"), not the id", what, *out);
        free(*out);
        *out = NULL;
    } else if (!config_ops_name_ok(*out)) {
        config_error(c, key, "expected a %s name (like \"vipmta\"), found \"%s\"", what, *out);
        free(*out);
        *out = NULL;
    }
}

void config_parse_ops(struct config_ctx *c, struct vipmta_config *cfg, const json_t *root)
{
    config_get_string(c, root, "log_format", "", &cfg->log_format);
    if (!cfg->log_format) {
        cfg->log_format = strdup("text");
    } else if (strcmp(cfg->log_format, "text") != 0 && strcmp(cfg->log_format, "json") != 0) {
        config_error(c, "log_format", "expected \"text\" (the default) or \"json\" (one JSON object "
                  "per line), found \"%s\"", cfg->log_format);
    }
    char *file = NULL;
    if (config_get_string(c, root, "log_file", "", &file) == 0 && file) {
        if (!*file)
            config_error(c, "log_file", "expected a file path, found an empty string (leave "
                      "log_file out to log to syslog, or to stderr with -f)");
        else
            cfg->log_file = config_resolve_path(c, file);
    }
    free(file);
    config_ops_name(c, root, "user", &cfg->user);
    config_ops_name(c, root, "group", &cfg->group);
    if (cfg->group && !cfg->user && json_object_get(root, "user") == NULL)
        config_error(c, "group", "\"group\" needs \"user\" (the daemon drops to user and group "
                  "together): add \"user\"");
    config_get_bool(c, root, "run_as_root", "", &cfg->run_as_root);
    if (cfg->run_as_root && cfg->user)
        config_error(c, "run_as_root", "true contradicts \"user\": \"%s\" (remove one)", cfg->user);
}

void config_free_ops(struct vipmta_config *cfg)
{
    free(cfg->log_format);
    free(cfg->log_file);
    free(cfg->user);
    free(cfg->group);
}
