/* fakecore.c: the fake core of the module unit suites: bindings, log, hook registration and loop stand-ins around the core's real module kit. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakecore.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "log/log.h"
#include "plugin/plugin_internal.h"

char fake_errors[FAKE_LINES][FAKE_LINE_MAX];
int fake_nerrors;
char fake_logs[FAKE_LINES][FAKE_LINE_MAX];
enum vipmta_log_level fake_log_levels[FAKE_LINES];
int fake_nlogs;
enum vipmta_log_level fake_log_level = VIPMTA_LOG_DEBUG;
ec_hook_core_connection_post_bind_func_t *fake_hook_fn;
void *fake_hook_closure;
int fake_hook_first;
int fake_hook_registrations;
ec_hook_vipmta_outbound_tls_func_t *fake_tls_hook_fn;
void *fake_tls_hook_closure;
struct event_base *fake_event_base;
const uint32_t *fake_connections;

static struct config_errors fake_errs;

static vipmta_binding fake_bindings[3] = {
    {.slot = 0, .name = "default"},
    {.slot = 1, .name = "vip1"},
    {.slot = 2, .name = "vip2"},
};

/* ---- the core's side the kit calls ---- */

struct event_base *daemon_event_base(void)
{
    return fake_event_base;
}

static void fake_record_log(enum vipmta_log_level level, const char *fmt, va_list ap)
{
    if (fake_nlogs < FAKE_LINES) {
        fake_log_levels[fake_nlogs] = level;
        vsnprintf(fake_logs[fake_nlogs++], FAKE_LINE_MAX, fmt, ap);
    }
}

void log_emitv(const char *component, enum vipmta_log_level level, const char *fmt, va_list ap)
{
    (void)component;
    fake_record_log(level, fmt, ap);
}

void log_writev(const char *component, enum vipmta_log_level level, const char *fmt, va_list ap)
{
    if (level <= fake_log_level)
        log_emitv(component, level, fmt, ap);
}

/* The printf-style entry points, each one line through log_writev. */
#define FAKE_LOGF(component, level, fmt)                                                     \
    do {                                                                                     \
        va_list ap_;                                                                         \
        va_start(ap_, fmt);                                                                  \
        log_writev(component, level, fmt, ap_);                                              \
        va_end(ap_);                                                                         \
    } while (0)

void log_write(const char *component, enum vipmta_log_level level, const char *fmt, ...)
{
    FAKE_LOGF(component, level, fmt);
}

void vipmta_log(enum vipmta_log_level level, const char *fmt, ...)
{
    FAKE_LOGF("core", level, fmt);
}

int vipmta_log_enabled(enum vipmta_log_level level)
{
    return level <= fake_log_level;
}

/* The binding table: slots 0 to 2, looked up by slot or by name. */
int vipmta_binding_count(void)
{
    return 3;
}

const vipmta_binding *vipmta_binding_by_slot(ec_binding_slot slot)
{
    return slot >= 0 && slot < vipmta_binding_count() ? &fake_bindings[slot] : NULL;
}

const vipmta_binding *vipmta_binding_by_name(const char *name)
{
    ec_binding_slot slot = 0;
    while (name && slot < vipmta_binding_count() && strcmp(fake_bindings[slot].name, name) != 0)
        slot++;
    return vipmta_binding_by_slot(name ? slot : -1);
}

ec_binding_slot config_get_binding_id_from_name(const char *name)
{
    const vipmta_binding *b = vipmta_binding_by_name(name);
    return b ? b->slot : EC_BINDING_SLOT_UNBOUND;
}

char *config_get_binding_name_from_id(ec_binding_slot slot)
{
    return vipmta_binding_by_slot(slot) ? (char *)fake_bindings[slot].name : NULL;
}

uint32_t vipmta_domain_connections(const domain_record *dr, ec_binding_slot slot)
{
    (void)dr;
    return fake_connections && slot >= 0 && slot < 3 ? fake_connections[slot] : 0;
}

static void fake_register(ec_hook_core_connection_post_bind_func_t *hook, void *closure,
                          int first)
{
    fake_hook_fn = hook;
    fake_hook_closure = closure;
    fake_hook_first = first;
    fake_hook_registrations++;
}

void register_core_connection_post_bind_hook_last(ec_hook_core_connection_post_bind_func_t *hook,
                                                  void *closure)
{
    fake_register(hook, closure, 0);
}

void register_core_connection_post_bind_hook_first(ec_hook_core_connection_post_bind_func_t *hook,
                                                   void *closure)
{
    fake_register(hook, closure, 1);
}

void register_vipmta_outbound_tls_hook_last(ec_hook_vipmta_outbound_tls_func_t *hook, void *closure)
{
    fake_tls_hook_fn = hook;
    fake_tls_hook_closure = closure;
}

void register_vipmta_outbound_tls_hook_first(ec_hook_vipmta_outbound_tls_func_t *hook,
                                             void *closure)
{
    register_vipmta_outbound_tls_hook_last(hook, closure);
}

/* ---- what a suite calls ---- */

/* Copies the new error messages into fake_errors, without "modules[0].". */
static void fake_collect(void)
{
    for (size_t i = 0; i < fake_errs.count; i++) {
        const char *msg = fake_errs.messages[i];
        if (strncmp(msg, "modules[0].", 11) == 0)
            msg += 11;
        if (fake_nerrors < FAKE_LINES)
            snprintf(fake_errors[fake_nerrors++], FAKE_LINE_MAX, "%s", msg);
    }
    config_errors_clear(&fake_errs);
}

void fake_reset(void)
{
    config_errors_clear(&fake_errs);
    fake_nerrors = fake_nlogs = 0;
    fake_hook_fn = NULL;
    fake_hook_closure = NULL;
    fake_hook_first = 0;
    fake_hook_registrations = 0;
    fake_tls_hook_fn = NULL;
    fake_tls_hook_closure = NULL;
    fake_log_level = VIPMTA_LOG_DEBUG;
}

json_t *fake_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    ck_assert_msg(j != NULL, "bad test JSON: %s", e.text);
    return j;
}

void fake_set_entry(vipmta_module_ctx *m, const char *entry)
{
    json_t *j = fake_json(entry);
    struct config_module cm = {0};
    cm.options = json_object_get(j, "options");
    cm.bindings = json_object_get(j, "bindings");
    cm.domains = json_object_get(j, "domains");
    cm.binding_domains = json_object_get(j, "binding_domains");
    json_t *empty = json_object();
    if (!cm.options)
        cm.options = empty;
    plugin_entry_set(&m->entry, &cm);
    json_decref(empty);
    json_decref(j);
}

vipmta_module_ctx *fake_module(const char *entry)
{
    const vipmta_module_descriptor *d = vipmta_module_get_descriptor();
    vipmta_module_ctx *m = calloc(1, sizeof(*m));
    ck_assert_ptr_nonnull(m);
    m->config_name = strdup(d->name);
    m->name = strdup(d->name);
    m->label = strdup(d->name);
    m->desc = d;
    m->debug_level = -1;
    m->errs = &fake_errs;
    fake_set_entry(m, entry);
    return m;
}

int fake_configure(vipmta_module_ctx *m)
{
    int rc = m->desc->configure(m, (const vipmta_value *)m->entry.options);
    m->configured = 1;
    fake_collect();
    return rc;
}

int fake_init(vipmta_module_ctx *m)
{
    m->in_init = 1;
    int rc = m->desc->init ? m->desc->init(m) : 0;
    m->in_init = 0;
    fake_collect();
    return rc;
}

int fake_reload(vipmta_module_ctx *m, const char *entry)
{
    fake_set_entry(m, entry);
    int rc = m->desc->reload(m, (const vipmta_value *)m->entry.options);
    fake_collect();
    return rc;
}

void fake_stop(vipmta_module_ctx *m)
{
    if (!m)
        return;
    if (m->configured && m->desc->shutdown)
        m->desc->shutdown(m);
    plugin_api_free_config(m);
    plugin_event_release_all(m);
    plugin_entry_clear(&m->entry);
    fake_collect();
    free(m->config_name);
    free(m->name);
    free(m->label);
    free(m);
}

vipmta_module_ctx *fake_start(const char *entry)
{
    vipmta_module_ctx *m = fake_module(entry);
    if (fake_configure(m) == 0 && fake_init(m) == 0)
        return m;
    fake_dump();
    fake_stop(m);
    return NULL;
}

int fake_has_error(const char *line)
{
    for (int i = 0; i < fake_nerrors; i++)
        if (strcmp(fake_errors[i], line) == 0)
            return 1;
    return 0;
}

int fake_has_log(const char *line)
{
    for (int i = 0; i < fake_nlogs; i++)
        if (strcmp(fake_logs[i], line) == 0)
            return 1;
    return 0;
}

int fake_logs_containing(const char *part)
{
    int n = 0;
    for (int i = 0; i < fake_nlogs; i++)
        n += strstr(fake_logs[i], part) != NULL;
    return n;
}

void fake_dump(void)
{
    for (int i = 0; i < fake_nerrors; i++)
        fprintf(stderr, "  error %d: %s\n", i, fake_errors[i]);
    for (int i = 0; i < fake_nlogs; i++)
        fprintf(stderr, "  log %d: %s\n", i, fake_logs[i]);
}

TCase *fake_tcase(Suite *s, const char *name, void (*setup)(void), void (*teardown)(void), ...)
{
    TCase *tc = tcase_create(name);
    const TTest *t;
    va_list ap;
    tcase_add_checked_fixture(tc, setup, teardown);
    va_start(ap, teardown);
    while ((t = va_arg(ap, const TTest *)))
        tcase_add_test(tc, t);
    va_end(ap);
    suite_add_tcase(s, tc);
    return tc;
}

int fake_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
