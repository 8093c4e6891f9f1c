/* connlog_options.c: strict parsing of the connlog options ({"file": path} or {"syslog": true}, "flush_interval_ms"). */
#include "connlog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const top_keys[] = {"file", "syslog", "flush_interval_ms", "tls", NULL};

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
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

void connlog_config_free(struct connlog_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->file);
    free(cfg);
}

struct connlog_config *connlog_config_parse(vipmta_module_ctx *m, const json_t *options)
{
    if (!json_is_object(options)) {
        vipmta_module_error(m, NULL, "must be an object, not %s", json_kind(options));
        return NULL;
    }
    struct connlog_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    int errors = vipmta_module_check_keys(m, options, NULL, top_keys);
    const json_t *file = json_object_get(options, "file");
    const json_t *sl = json_object_get(options, "syslog");
    int file_ok = 0;
    if (file) {
        if (!json_is_string(file) || json_string_length(file) == 0) {
            vipmta_module_error(m, "file", "must be the path of the log file, not %s",
                                json_is_string(file) ? "an empty string" : json_kind(file));
            errors++;
        } else if (strlen(json_string_value(file)) != json_string_length(file)) {
            vipmta_module_error(m, "file", "must not contain a NUL character");
            errors++;
        } else if (!(cfg->file = strdup(json_string_value(file)))) {
            vipmta_module_error(m, NULL, "out of memory");
            errors++;
        } else {
            file_ok = 1;
        }
    }
    if (sl) {
        if (!json_is_boolean(sl)) {
            vipmta_module_error(m, "syslog", "must be true or false, not %s", json_kind(sl));
            errors++;
        } else {
            cfg->syslog = json_is_true(sl);
        }
    }
    const json_t *tls = json_object_get(options, "tls");
    if (tls) {
        if (!json_is_boolean(tls)) {
            vipmta_module_error(m, "tls", "must be true or false, not %s", json_kind(tls));
            errors++;
        } else {
            cfg->tls = json_is_true(tls);
        }
    }
    const json_t *flush = json_object_get(options, "flush_interval_ms");
    if (flush) {
        if (!json_is_integer(flush) || json_integer_value(flush) < 0 ||
            json_integer_value(flush) > CONNLOG_FLUSH_INTERVAL_MAX) {
            char found[32];
            if (json_is_integer(flush))
                snprintf(found, sizeof(found), "%lld", (long long)json_integer_value(flush));
            else
                snprintf(found, sizeof(found), "%s", json_kind(flush));
            vipmta_module_error(m, "flush_interval_ms",
                                "must be an integer from 0 (write each line at once) to %d, "
                                "not %s",
                                CONNLOG_FLUSH_INTERVAL_MAX, found);
            errors++;
        } else {
            cfg->flush_interval_ms = (unsigned)json_integer_value(flush);
        }
    }
    if (!errors && file_ok == cfg->syslog)
        vipmta_module_error(m, NULL, "%s",
                            cfg->syslog ? "set either \"file\" or \"syslog\": true, not both"
                                        : "set either \"file\" (a path) or \"syslog\": true");
    if (errors || file_ok == cfg->syslog) {
        connlog_config_free(cfg);
        return NULL;
    }
    return cfg;
}
