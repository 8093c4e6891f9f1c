/* config_internal.h: what the config loader's files share (section parsers, syntax checks). */
#ifndef VIPMTA_CORE_CONFIG_INTERNAL_H
#define VIPMTA_CORE_CONFIG_INTERNAL_H

#include "config.h"
#include "config_schema.h"

int config_hostname_ok(const char *name);
/* Lower-cases `s` in place (domain names). */
void config_lower(char *s);
int config_parse_hostport(const char *s, char *host, size_t hostlen, unsigned *port);
void config_parse_bindings(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v);
/* `name` is a binding of the configuration ("default" always is). */
int config_binding_exists(const struct vipmta_config *cfg, const char *name);
void config_parse_binding_groups(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v);
void config_parse_binding_rules(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v);
void config_check_default_group(struct config_ctx *c, struct vipmta_config *cfg);
void config_parse_domains(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v);
void config_parse_routes(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v);
/* `metrics` (config_metrics.c); call after the listeners are parsed. */
void config_parse_metrics(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v);
/* log_format, log_file, user, group, run_as_root (config_ops.c) */
void config_parse_ops(struct config_ctx *c, struct vipmta_config *cfg, const json_t *root);
void config_free_ops(struct vipmta_config *cfg);
/* TLS and AUTH (config_tls.c): the top-level `tls` section, a listen entry's
 * TLS keys (`listen[i]` at `path`), a domain's or a route's `tls` policy, a
 * route's `auth`, and what is freed with the config. */
void config_parse_tls(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v);
void config_parse_listen_tls(struct config_ctx *c, const struct vipmta_config *cfg,
                             const json_t *item, const char *path, struct config_listen *l);
int config_parse_tls_policy(struct config_ctx *c, const json_t *obj, const char *path,
                            enum config_tls_policy *out);
void config_parse_route_auth(struct config_ctx *c, const json_t *obj, const char *path,
                             struct config_route *route);
void config_free_listen_tls(struct config_listen *l);
void config_free_tls(struct vipmta_config *cfg);
/* `modules` (config_modules.c); call after the bindings are parsed. */
void config_parse_modules(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v);
void config_free_module(struct config_module *m);
void config_free_modules(struct vipmta_config *cfg);

#endif
