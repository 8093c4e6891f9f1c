/* connlog_options.c: the connlog options ({"file": path} or {"syslog": true}, "flush_interval_ms", "tls"). */
#include "connlog.h"

#include <stdlib.h>
#include <string.h>

static const char *const top_keys[] = {"file", "syslog", "flush_interval_ms", "tls", NULL};

void connlog_config_free(void *p)
{
    struct connlog_config *cfg = p;
    if (!cfg)
        return;
    free(cfg->file);
    free(cfg);
}

struct connlog_config *connlog_config_parse(vipmta_module_ctx *m, const vipmta_value *options)
{
    struct connlog_config *cfg = calloc(1, sizeof(*cfg));
    const char *file = NULL;
    long long flush = 0;
    if (!cfg) {
        vipmta_module_error(m, NULL, "out of memory");
        return NULL;
    }
    int errors = vipmta_module_check_keys(m, options, NULL, top_keys);
    int r = vipmta_option_string(m, options, NULL, "file", "the path of the log file", &file);
    errors += r < 0;
    if (r > 0 && !(cfg->file = strdup(file))) {
        vipmta_module_error(m, NULL, "out of memory");
        errors++;
    }
    errors += vipmta_option_bool(m, options, NULL, "syslog", &cfg->syslog) < 0;
    errors += vipmta_option_bool(m, options, NULL, "tls", &cfg->tls) < 0;
    errors += vipmta_option_int(m, options, NULL, "flush_interval_ms", 0,
                                CONNLOG_FLUSH_INTERVAL_MAX, &flush) < 0;
    cfg->flush_interval_ms = (unsigned)flush;
    int file_ok = cfg->file != NULL;
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
