/* deliver_hooks.c: the outbound hook family's calls: host records, connection handles, the connection and delivery log hooks with their message views. */
#include "deliver_internal.h"
#include "deliver_connect.h"
#include "plugin/plugin_hooks.h"
#include "plugin/plugin_message.h"
#include "queue/queue.h"
#include "route/route.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>

const char *vipmta_host_name(const host_record *host)
{
    return host ? host->target->host : NULL;
}

const struct sockaddr *vipmta_host_address(const host_record *host, socklen_t *len)
{
    if (len)
        *len = host ? host->target->addr_len : 0;
    return host ? (const struct sockaddr *)&host->target->addr : NULL;
}

int vipmta_host_preference(const host_record *host)
{
    return host ? (int)host->target->preference : 0;
}

int deliver_hooks_conn_error(int status, int error)
{
    switch ((enum deliver_connect_status)status) {
    case DELIVER_CONNECT_OK:
        return 0;
    case DELIVER_CONNECT_SOCKET_FAILED:
        return CONN_ERROR_SOCKET;
    case DELIVER_CONNECT_BIND_FAILED:
    case DELIVER_CONNECT_NO_ADDRESS:
        return CONN_ERROR_BIND;
    case DELIVER_CONNECT_VETOED:
        return CONN_ERROR_PROHIBITED_IP;
    case DELIVER_CONNECT_CONNECT_FAILED:
        break;
    }
    if (error == ENETUNREACH || error == EHOSTUNREACH || error == ENETDOWN)
        return CONN_ERROR_CONNECT_NETWORK;
    if (error == ETIMEDOUT)
        return CONN_ERROR_CONNECT_TIMEOUT;
    return CONN_ERROR_CONNECT;
}

int deliver_hooks_veto_host(struct _host_record *host, domain_record *dr, ec_binding_slot slot,
                            int max_conns, int cur_conns, const char **module)
{
    if (!has_core_veto_host_connection_hook())
        return 0;
    int r = call_core_veto_host_connection_hook(host, dr, slot, max_conns, cur_conns);
    if (!r)
        return 0;
    *module = plugin_hooks_last_stop_owner(&plugin_hook_core_veto_host_connection);
    return 1;
}

void deliver_hooks_initiated(domain_record *dr, ec_binding_slot slot, int fd_or_error)
{
    if (!has_core_post_initiate_connection_smtp_hook())
        return;
    struct timeval now;
    gettimeofday(&now, NULL);
    call_core_post_initiate_connection_smtp_hook(dr, slot, &now, fd_or_error);
}

void deliver_hooks_connect_result(const struct sockaddr *addr, int err, domain_record *dr,
                                  ec_binding_slot slot)
{
    if (err ? !has_core_log_client_connection_failure_hook()
            : !has_core_log_client_connection_success_hook())
        return;
    struct timeval now;
    gettimeofday(&now, NULL);
    if (err)
        call_core_log_client_connection_failure_hook((struct sockaddr *)(uintptr_t)addr, err, dr,
                                                     slot, &now);
    else
        call_core_log_client_connection_success_hook((struct sockaddr *)(uintptr_t)addr, dr, slot,
                                                     &now);
}

void deliver_hooks_connection(int up, connection_handle *h)
{
    if (up && has_core_inc_outbound_connections_hook())
        call_core_inc_outbound_connections_hook(h);
    else if (!up && has_core_dec_outbound_connections_hook())
        call_core_dec_outbound_connections_hook(h);
}

int deliver_hooks_outcome_wanted(void)
{
    return has_core_log_delivery_v1_hook() || has_core_log_transient_failure_v1_hook() ||
           has_core_log_permanent_failure_v1_hook();
}

void deliver_hooks_outcome(struct queue_rcpt *r, enum queue_outcome o, const char *note)
{
    int delivered = o == QUEUE_OUTCOME_DELIVERED, deferred = o == QUEUE_OUTCOME_DEFERRED;
    if (o == QUEUE_OUTCOME_DELETED || (delivered && !has_core_log_delivery_v1_hook()) ||
        (deferred && !has_core_log_transient_failure_v1_hook()) ||
        (o == QUEUE_OUTCOME_BOUNCED && !has_core_log_permanent_failure_v1_hook()))
        return;
    ec_message view;
    queue_message_view(&view, r);
    struct timeval now;
    gettimeofday(&now, NULL);
    const char *text = note ? note : "";
    int len = (int)strlen(text);
    if (delivered) {
        call_core_log_delivery_v1_hook(&view, r->dr, &now, text, len);
    } else if (deferred) {
        call_core_log_transient_failure_v1_hook(&view, r->dr, &now, text, len);
    } else {
        call_core_log_permanent_failure_v1_hook(&view, r->dr, &now, text, len);
    }
    plugin_message_release(&view);
}
