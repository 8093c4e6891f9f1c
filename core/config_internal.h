/* config_internal.h: what the config loader's files share (section parsers, syntax checks). */
#ifndef VIPMTA_CONFIG_INTERNAL_H
#define VIPMTA_CONFIG_INTERNAL_H

#include "config.h"
#include "config_schema.h"

int cfg_hostname_ok(const char *name);
/* Lower-cases `s` in place (domain names). */
void cfg_lower(char *s);
int cfg_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port);
void cfg_parse_bindings(struct cfg_ctx *c, struct vipmta_config *cfg, const json_t *v);
void cfg_parse_binding_groups(struct cfg_ctx *c, struct vipmta_config *cfg, const json_t *v);
void cfg_parse_binding_rules(struct cfg_ctx *c, struct vipmta_config *cfg, const json_t *v);
void cfg_check_default_group(struct cfg_ctx *c, struct vipmta_config *cfg);
void cfg_parse_domains(struct cfg_ctx *c, struct vipmta_config *cfg, const json_t *v);
void cfg_parse_routes(struct cfg_ctx *c, struct vipmta_config *cfg, const json_t *v);
/* `metrics` (config_metrics.c); call after the listeners are parsed. */
void cfg_parse_metrics(struct cfg_ctx *c, struct vipmta_config *cfg, const json_t *v);
/* log_format, log_file, user, group, run_as_root (config_ops.c) */
void cfg_parse_ops(struct cfg_ctx *c, struct vipmta_config *cfg, const json_t *root);
void cfg_free_ops(struct vipmta_config *cfg);

#endif
