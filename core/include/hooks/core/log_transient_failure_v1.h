/* hooks/core/log_transient_failure_v1.h: the log_transient_failure_v1 hook: a recipient was deferred (Momentum's names and signature). */
#ifndef VIPMTA_HOOKS_CORE_LOG_TRANSIENT_FAILURE_V1_H
#define VIPMTA_HOOKS_CORE_LOG_TRANSIENT_FAILURE_V1_H

#include "module-hooks.h"
#include "vipmta_message.h"
#include <sys/time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Runs on the delivery loop once per recipient deferred (a 4xx, a
 * connection or session lost, no host reachable), when the delivery log
 * line is written, before the recipient is put back: `msg` shows that
 * recipient; `note` is the remote reply or vipmta's reason. A provider may
 * move the message to another binding with ec_message_change_binding_slot:
 * its recipients that are neither final nor in flight go to that binding's
 * queue, and this one is tried again from there right away. Every provider
 * runs.
 *
 *   typedef void ec_hook_core_log_transient_failure_v1_func_t(void *closure,
 *           ec_message *msg, domain_record *dr, struct timeval *now, const char *note, int note_len);
 *   int  has_core_log_transient_failure_v1_hook(void);
 *   void register_core_log_transient_failure_v1_hook_first(ec_hook_core_log_transient_failure_v1_func_t *hook, void *closure);
 *   void register_core_log_transient_failure_v1_hook_last(ec_hook_core_log_transient_failure_v1_func_t *hook, void *closure);
 *   void call_core_log_transient_failure_v1_hook(msg, dr, now, note, note_len);
 */
#define VIPMTA_HOOK_CORE_LOG_TRANSIENT_FAILURE_V1(X)                                        \
    X(core, log_transient_failure_v1,                                                       \
      (void *closure, ec_message *msg, domain_record *dr, struct timeval *now, const char *note, int note_len), \
      (ec_message * msg, domain_record * dr, struct timeval * now, const char * note, int note_len), \
      (EC_HOOK_CLOSURE, msg, dr, now, note, note_len))

VIPMTA_HOOK_CORE_LOG_TRANSIENT_FAILURE_V1(VIPMTA_DECLARE_CORE_VOID_HOOK)

#ifdef __cplusplus
}
#endif
#endif
