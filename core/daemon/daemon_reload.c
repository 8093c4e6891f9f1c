/* daemon_reload.c: live configuration reload: validate the whole new config, then apply it or keep the old one. */
#include "daemon_reload.h"
#include "binding/binding_table.h"
#include "config/config_current.h"
#include "control/control_stats.h"
#include "log/log.h"
#include "plugin/plugin_reload.h"
#include "queue/queue.h"
#include "queue/queue_domain.h"
#include "route/route.h"
#include "smtpd/smtpd.h"
#include "tls/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Top-level keys applied live; any other key that changes is reported as
 * waiting for a restart (see docs/reload.md). */
static const char *const live_keys[] = {
    "hostname", "module_path", "relay_from", "relay_domains", "bindings", "binding_groups",
    "default_binding_group", "binding_rules", "domains", "routes", "smtp", "modules",
    "log_level", "delivery_log", "log_format", "log_file", "tls", NULL};
/* Keys checked field by field below (part of them reloads). */
static const char *const partly_live_keys[] = {"dns", "listen", NULL};

static int daemon_reload_in_list(const char *const *list, const char *key)
{
    for (size_t i = 0; list[i]; i++)
        if (strcmp(list[i], key) == 0)
            return 1;
    return 0;
}

static void daemon_reload_append(char *buf, size_t size, const char *sep, const char *text)
{
    size_t len = strlen(buf);
    if (len < size)
        snprintf(buf + len, size - len, "%s%s", len ? sep : "", text);
}

static int daemon_reload_same_string(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* A key of either root whose value differs: restart-only unless live. */
static void daemon_reload_check_restart_keys(const struct vipmta_config *old, const struct vipmta_config *cfg,
                               struct config_errors *warnings, char *changed, size_t size)
{
    const json_t *roots[2] = {old->root, cfg->root};
    const char *key;
    json_t *value;

    for (int r = 0; r < 2; r++) {
        json_object_foreach((json_t *)roots[r], key, value) {
            if (r == 1 && json_object_get(old->root, key))
                continue; /* seen from the old root already */
            if (json_equal(json_object_get(old->root, key), json_object_get(cfg->root, key)))
                continue;
            if (daemon_reload_in_list(live_keys, key))
                daemon_reload_append(changed, size, ", ", key);
            else if (!daemon_reload_in_list(partly_live_keys, key))
                config_errors_add(warnings, "%s changed: takes effect after a restart", key);
        }
    }
    const struct config_dns *a = &old->dns, *b = &cfg->dns;
    int servers_same = a->server_count == b->server_count;
    for (size_t i = 0; servers_same && i < a->server_count; i++)
        servers_same = daemon_reload_same_string(a->servers[i], b->servers[i]);
    if (!servers_same || a->timeout_ms != b->timeout_ms || a->tries != b->tries)
        config_errors_add(warnings, "dns.servers, dns.timeout_ms or dns.tries changed: takes effect "
                   "after a restart (dns.mx_port and routes reload live)");
    if (a->mx_port != b->mx_port)
        daemon_reload_append(changed, size, ", ", "dns.mx_port");
    /* listen: the sockets stay; their TLS and AUTH settings reload */
    int sockets_same = old->listen_count == cfg->listen_count;
    for (size_t i = 0; sockets_same && i < old->listen_count; i++)
        sockets_same = old->listen[i].port == cfg->listen[i].port &&
                       daemon_reload_same_string(old->listen[i].address, cfg->listen[i].address) &&
                       (old->listen[i].tls == CONFIG_LISTEN_TLS_IMPLICIT) ==
                           (cfg->listen[i].tls == CONFIG_LISTEN_TLS_IMPLICIT);
    if (!sockets_same)
        config_errors_add(warnings, "listen changed: takes effect after a restart (addresses, "
                   "ports, implicit TLS; certificates, require_tls and auth reload live)");
    else if (!json_equal(json_object_get(old->root, "listen"), json_object_get(cfg->root, "listen")))
        daemon_reload_append(changed, size, ", ", "listen (TLS and AUTH)");
}

static int daemon_reload_apply(const struct vipmta_config *old, struct vipmta_config *cfg,
                               struct config_errors *errs)
{
    struct config_errors warnings = {0};
    char changed[512] = "";
    char modules[512] = "";
    int old_bindings = vipmta_binding_count();
    size_t errors_before = errs->count;

    /* phase 1: validate everything; nothing running changes */
    daemon_reload_check_restart_keys(old, cfg, &warnings, changed, sizeof(changed));
    route_check_config(cfg, errs);
    /* certificates, keys and credentials are read again (renewed files are
     * picked up even when the config text is the same) */
    tls_runtime_build(cfg, errs);
    struct binding_table_saved *bindings = binding_table_prepare(cfg, errs);
    struct plugin_reload_plan *plan = NULL;
    if (bindings) {
        /* modules resolve binding names against the table in force: put the
         * new one in for their checks, and take it out again */
        binding_table_swap(bindings);
        plan = plugin_reload_prepare(old, cfg, errs, &warnings);
        binding_table_swap(bindings);
    }
    if (errs->count > errors_before || !bindings || !plan) {
        plugin_reload_plan_free(plan);
        binding_table_saved_free(bindings);
        config_errors_clear(&warnings);
        if (errs->count == errors_before)
            config_errors_add(errs, "%s: refused (see the log)", cfg->path);
        return -1;
    }

    /* phase 2: apply; messages modules suspended are resumed first (or
     * answered 451), then bindings (modules look their names up) */
    smtpd_hooks_settle(SMTPD_HOOKS_RELOAD_WAIT);
    binding_table_swap(bindings); /* `bindings` now holds the old table */
    int new_bindings = vipmta_binding_count();
    if (queue_domain_registry_grow_bindings(new_bindings) != 0 || control_stats_init(new_bindings) != 0 ||
        plugin_reload_apply(plan, errs) != 0) {
        binding_table_swap(bindings);
        control_stats_init(old_bindings);
        plugin_reload_plan_free(plan);
        binding_table_saved_free(bindings);
        config_errors_clear(&warnings);
        if (errs->count == errors_before)
            config_errors_add(errs, "out of memory applying %s", cfg->path);
        return -1;
    }
    plugin_reload_describe(plan, modules, sizeof(modules));
    plugin_reload_plan_free(plan);
    binding_table_saved_free(bindings); /* nothing keeps pointers to table entries */
    struct config_errors notes = {0}; /* about the new config, not about a restart */
    binding_table_check_addresses(&notes);
    config_check_warnings(cfg, &notes);
    queue_domain_registry_apply_config(cfg);
    queue_bindings_changed();
    int level = log_level_from_name(cfg->log_level);
    if (level >= 0)
        log_set_level((enum vipmta_log_level)level);
    log_set_json(cfg->log_format && strcmp(cfg->log_format, "json") == 0);
    /* the same path is reopened (log rotation), a new one opened, none:
     * back to stderr (-f) or syslog */
    if (log_open_file(cfg->log_file) != 0)
        log_write("core", VIPMTA_LOG_ERROR, "reload: cannot open log_file %s: %s; still writing "
                  "to the old one", cfg->log_file, log_open_error(errno));
    if (log_delivery_open(cfg->delivery_log) != 0)
        log_write("core", VIPMTA_LOG_ERROR, "reload: cannot open the delivery log %s: %s",
                  cfg->delivery_log ? cfg->delivery_log : "(main log)", log_open_error(errno));

    for (size_t i = 0; i < notes.count; i++)
        log_write("core", VIPMTA_LOG_WARNING, "reload: %s", notes.messages[i]);
    config_errors_clear(&notes);
    for (size_t i = 0; i < warnings.count; i++)
        log_write("core", VIPMTA_LOG_WARNING, "reload: %s", warnings.messages[i]);
    char summary[1200];
    snprintf(summary, sizeof(summary), "bindings %d->%d", old_bindings, new_bindings);
    if (modules[0])
        daemon_reload_append(summary, sizeof(summary), ", ", modules);
    if (changed[0]) {
        daemon_reload_append(summary, sizeof(summary), ", ", "changed: ");
        daemon_reload_append(summary, sizeof(summary), "", changed);
    }
    if (warnings.count) {
        char w[64];
        snprintf(w, sizeof(w), "%zu change(s) wait for a restart", warnings.count);
        daemon_reload_append(summary, sizeof(summary), ", ", w);
    }
    log_write("core", VIPMTA_LOG_NOTICE, "reload: applied %s (%s)", cfg->path, summary);
    config_errors_clear(&warnings);
    return 0;
}

int daemon_reload_config(struct config_errors *errs)
{
    const struct vipmta_config *old = config_current();

    if (!old || !old->path) {
        config_errors_add(errs, "no configuration file to read again");
        return -1;
    }
    struct vipmta_config *cfg = config_load_file(old->path, errs);
    if (!cfg)
        return -1;
    if (daemon_reload_apply(old, cfg, errs) != 0) {
        config_release(cfg);
        return -1;
    }
    /* sessions, connections and lookups in progress keep the old one until
     * they end; it is freed with the last of them */
    config_install(cfg);
    route_config_changed();
    return 0;
}
