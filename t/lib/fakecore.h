/* fakecore.h: the fake core every module unit suite links (libfakecore.a): the core's real module kit with a fixed binding table, recorded logs and hooks, and a test-driven event loop. */
#ifndef VIPMTA_T_FAKECORE_H
#define VIPMTA_T_FAKECORE_H

#include <check.h>
#include <stdint.h>
#include <jansson.h>

#include "vipmta.h"

/* What the fake core is made of:
 *  - real: the option values and readers (plugin_options.c), the scopes
 *    (plugin_scope.c), the module services and error reporting
 *    (plugin_api.c), timers and watches (plugin_event.c), so a suite sees
 *    the messages users see;
 *  - fake: three bindings ("default" slot 0, "vip1" 1, "vip2" 2), the log
 *    (recorded), hook registration (recorded), the event loop (the suite's
 *    own libevent base, or none), the open connections per slot.
 * One instance at a time: fake_module() makes it, fake_stop() ends it. */

#define FAKE_LINES 128
#define FAKE_LINE_MAX 700

/* Error lines the module reported, without "modules[0]." in front:
 * "options.tos: must be ...", "bindings.vip1.mark: ...". */
extern char fake_errors[FAKE_LINES][FAKE_LINE_MAX];
extern int fake_nerrors;
/* Log lines (the message only) and their levels, of the module and the core. */
extern char fake_logs[FAKE_LINES][FAKE_LINE_MAX];
extern enum vipmta_log_level fake_log_levels[FAKE_LINES];
extern int fake_nlogs;
/* Lines above this level are not written (vipmta_log_enabled); default debug. */
extern enum vipmta_log_level fake_log_level;

/* The last connection_post_bind registration. */
extern ec_hook_core_connection_post_bind_func_t *fake_hook_fn;
extern void *fake_hook_closure;
extern int fake_hook_first;
extern int fake_hook_registrations;
/* The last vipmta_outbound_tls registration (vipmta_tls.h). */
extern ec_hook_vipmta_outbound_tls_func_t *fake_tls_hook_fn;
extern void *fake_tls_hook_closure;

/* What the last vipmta_veto call said (fake_vetoes counts the calls). */
extern int fake_vetoes;
extern int fake_veto_kind;
extern unsigned fake_veto_retry;
extern char fake_veto_reply[512];

/* The loop modules' timers and watches use; NULL: none (as vipmta -t). */
extern struct event_base *fake_event_base;
/* Open connections per binding slot (3) for vipmta_domain_connections. */
extern const uint32_t *fake_connections;

/* Forgets errors, logs and hooks (a checked fixture's setup). */
void fake_reset(void);
/* A new instance of a module whose config entry is `entry` (JSON text:
 * {"options": {...}, "bindings": ..., "domains": ..., "binding_domains": ...};
 * "{}" for an empty one). The test fails on bad JSON. */
vipmta_module_ctx *fake_module(const char *entry);
/* Gives the instance a new entry (for reload). */
void fake_set_entry(vipmta_module_ctx *m, const char *entry);
/* Its descriptor's configure / init / reload, with the instance's own
 * options; errors land in fake_errors. */
int fake_configure(vipmta_module_ctx *m);
int fake_init(vipmta_module_ctx *m);
int fake_reload(vipmta_module_ctx *m, const char *entry);
/* shutdown, then frees the instance (its kept config, timers, watches). */
void fake_stop(vipmta_module_ctx *m);
/* configure + init of `entry`; the instance, or NULL after dumping why. */
vipmta_module_ctx *fake_start(const char *entry);

/* A parsed JSON value (the test fails on bad JSON). */
json_t *fake_json(const char *text);
int fake_has_error(const char *line);
int fake_has_log(const char *line);
int fake_logs_containing(const char *part);
void fake_dump(void);

/* A module's parsed options, which must be valid: no errors recorded (the
 * errors and logs are dumped otherwise). */
#define ck_assert_parsed(cfg)                                                                \
    do {                                                                                     \
        if (!(cfg) || fake_nerrors)                                                          \
            fake_dump();                                                                     \
        ck_assert_ptr_nonnull(cfg);                                                          \
        ck_assert_int_eq(fake_nerrors, 0);                                                   \
    } while (0)

#define ck_assert_error(line)                                                                \
    do {                                                                                     \
        if (!fake_has_error(line))                                                           \
            fake_dump();                                                                     \
        ck_assert_msg(fake_has_error(line), "missing error: %s", line);                      \
    } while (0)

#define ck_assert_log(line)                                                                  \
    do {                                                                                     \
        if (!fake_has_log(line))                                                             \
            fake_dump();                                                                     \
        ck_assert_msg(fake_has_log(line), "missing log line: %s", line);                     \
    } while (0)

/* Adds to `s` a test case `name` with a checked fixture and the tests
 * listed (START_TEST names), NULL-terminated. */
TCase *fake_tcase(Suite *s, const char *name, void (*setup)(void), void (*teardown)(void), ...);
/* Runs a suite the way every module suite does: CK_ENV, exit status. */
int fake_run(Suite *s);

#endif
