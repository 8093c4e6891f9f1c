/* vipmta_veto.h: what a connection_post_bind veto means: transient (the default), permanent, or try another binding. */
#ifndef VIPMTA_VETO_H
#define VIPMTA_VETO_H

#ifdef __cplusplus
extern "C" {
#endif

/* The kinds of a veto. */
#define VIPMTA_VETO_TRANSIENT 0     /* the default: the domain's mail from this binding waits
                                     * (no new connection) for retry_after seconds, or the
                                     * domain's veto_retry, then it is tried again */
#define VIPMTA_VETO_PERMANENT 1     /* the domain's ready mail from this binding bounces with
                                     * the reply (its DSN says it) */
#define VIPMTA_VETO_OTHER_BINDING 2 /* mail whose binding came from a group moves to another
                                     * binding of it (binding_group_choose_binding, this one
                                     * excluded); mail pinned to this binding, or with no
                                     * other usable binding, waits as for TRANSIENT */

/* Says what the veto a connection_post_bind provider is about to return
 * (non-zero) means; call it from the provider, just before returning. Not
 * calling it is a transient veto. `retry_after_seconds`: how long mail
 * waits (TRANSIENT, OTHER_BINDING; 0: the domain's veto_retry; at most a
 * day). `reply`: NULL for the default ("550 5.7.1 vetoed by module NAME"
 * for PERMANENT), or a full one-line reply of the kind's class: "5xx x.y.z
 * text" for PERMANENT, "4xx x.y.z text" for the others (the delivery log,
 * the DSN, vipmtactl show it); copied. When every exchanger of the domain
 * was vetoed, the last veto decides (PERMANENT only when every one was).
 * Only connection_post_bind takes it: other hooks have their own results
 * (veto_host_connection skips a host, check_outbound_conn_throttle gives a
 * time). 0, or -1 with errno: EPERM (not inside connection_post_bind),
 * EINVAL (a bad kind or reply). */
int vipmta_veto(int kind, unsigned retry_after_seconds, const char *reply);

#ifdef __cplusplus
}
#endif
#endif
