/* hook_recorder.c: a Momentum-style module: records each call of the outbound connection hooks and the binding validation hooks as one line of a file, skips one exchanger host and moves one recipient domain's mail to another binding. */
/*
 * Written against Momentum's documented C API only (module.h, ec_config.h,
 * ec_message.h, connection.h, the veto_host_connection,
 * inc/dec_outbound_connections, post_initiate_connection_smtp,
 * log_client_connection_success/failure, inc_outbound_conn_throttle,
 * validate_set_binding and post_validate_set_binding hooks).
 *
 *   hook_recorder { file = "hooks.log" skip_host = "192.0.2.7"
 *                   rebind_domain = "moved.test" rebind_to = "vip2" }
 * Each call appends one line "HOOK key=value ..." to `file`. A host whose
 * name or address is `skip_host` is vetoed (veto_host_connection); a message
 * whose first recipient is at `rebind_domain` gets binding `rebind_to`
 * (validate_set_binding).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "sample.h"
#include "ec_message.h"
#include "connection.h"
#include "hooks/core/veto_host_connection.h"
#include "hooks/core/inc_outbound_connections.h"
#include "hooks/core/dec_outbound_connections.h"
#include "hooks/core/post_initiate_connection_smtp.h"
#include "hooks/core/log_client_connection_success.h"
#include "hooks/core/log_client_connection_failure.h"
#include "hooks/core/inc_outbound_conn_throttle.h"
#include "hooks/core/validate_set_binding.h"
#include "hooks/core/post_validate_set_binding.h"

#define MODNAME "hook_recorder"

enum { OPT_FILE, OPT_SKIP_HOST, OPT_REBIND_DOMAIN, OPT_REBIND_TO, OPT_COUNT };
static int option_handle[OPT_COUNT];

static ec_config_option_def hook_recorder_options[OPT_COUNT] = {
    {"file", ECCFGTYPE_STRING, NULL, "Global", 0, NULL, "\"\"", NULL, NULL, NULL, NULL},
    {"skip_host", ECCFGTYPE_STRING, NULL, "Global", 0, NULL, "\"\"", NULL, NULL, NULL, NULL},
    {"rebind_domain", ECCFGTYPE_STRING, NULL, "Global", 0, NULL, "\"\"", NULL, NULL, NULL, NULL},
    {"rebind_to", ECCFGTYPE_STRING, NULL, "Global", 0, NULL, "\"\"", NULL, NULL, NULL, NULL},
};

static generic_module_infrastructure *hook_recorder_self;

/* A string option's value copied into `buf` ("" when unset). */
static const char *hook_recorder_option(int which, char *buf, size_t size)
{
    ec_config_value *val = ec_config_option_fetch(NULL, option_handle[which], NULL);
    snprintf(buf, size, "%s", val->v->vstr ? val->v->vstr : "");
    ec_config_release_value(val);
    return buf;
}

/* Appends one line to the file: one write() of an O_APPEND descriptor, so
 * lines from the receiving and the delivery loops never mix. */
static void hook_recorder_line(const char *fmt, ...)
{
    char path[1024], line[1024];
    if (!hook_recorder_option(OPT_FILE, path, sizeof(path))[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, line, (size_t)n) != n)
        ec_mod_debug(hook_recorder_self, DCRITICAL, MODNAME ": cannot append to %s: %s\n", path,
                     strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* "address:port" of `sa` into `buf`, or "none". */
static const char *hook_recorder_addr(const struct sockaddr *sa, char *buf, size_t size)
{
    char host[NI_MAXHOST], port[NI_MAXSERV];
    socklen_t len = sa && sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                    : sizeof(struct sockaddr_in);
    if (!sa || getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
                           NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        snprintf(buf, size, "none");
    else
        snprintf(buf, size, "%s:%s", host, port);
    return buf;
}

/* The host's address without the port, into `buf`. */
static const char *hook_recorder_host_ip(const host_record *host, char *buf, size_t size)
{
    socklen_t len = 0;
    const struct sockaddr *sa = vipmta_host_address(host, &len);
    if (!sa || getnameinfo(sa, len, buf, size, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(buf, size, "none");
    return buf;
}

static int hook_recorder_veto_host(void *closure, host_record *host, domain_record *dr,
                                   int binding_slot, int max_conns, int cur_conns)
{
    (void)closure;
    char skip[256], ip[NI_MAXHOST], addr[NI_MAXHOST + NI_MAXSERV + 2];
    socklen_t len = 0;
    hook_recorder_option(OPT_SKIP_HOST, skip, sizeof(skip));
    hook_recorder_host_ip(host, ip, sizeof(ip));
    const char *name = vipmta_host_name(host);
    int veto = skip[0] && ((name && strcmp(name, skip) == 0) || strcmp(ip, skip) == 0);
    hook_recorder_line("veto_host_connection domain=%s binding=%d host=%s addr=%s max=%d cur=%d "
                       "veto=%d",
                       dr->domain, binding_slot, name ? name : "none",
                       hook_recorder_addr(vipmta_host_address(host, &len), addr, sizeof(addr)),
                       max_conns, cur_conns, veto);
    return veto;
}

static void hook_recorder_connection(const char *what, connection_handle *connh)
{
    char addr[NI_MAXHOST + NI_MAXSERV + 2];
    socklen_t len = 0;
    hook_recorder_line("%s domain=%s binding=%d host=%s addr=%s fd=%d", what,
                       connh->domain ? connh->domain->domain : "none", connh->binding_slot,
                       connh->host ? vipmta_host_name(connh->host) : "none",
                       connh->host ? hook_recorder_addr(vipmta_host_address(connh->host, &len),
                                                        addr, sizeof(addr))
                                   : "none",
                       connh->fd);
}

static void hook_recorder_inc_connections(void *closure, connection_handle *connh)
{
    (void)closure;
    hook_recorder_connection("inc_outbound_connections", connh);
}

static void hook_recorder_dec_connections(void *closure, connection_handle *connh)
{
    (void)closure;
    hook_recorder_connection("dec_outbound_connections", connh);
}

static void hook_recorder_initiated(void *closure, domain_record *dr, int binding_slot,
                                    struct timeval *now, int conn_fd)
{
    (void)closure;
    (void)now;
    hook_recorder_line("post_initiate_connection_smtp domain=%s binding=%d fd=%d", dr->domain,
                       binding_slot, conn_fd);
}

static void hook_recorder_success(void *closure, struct sockaddr *addr, domain_record *dr,
                                  int binding_slot, struct timeval *now)
{
    (void)closure;
    (void)now;
    char a[NI_MAXHOST + NI_MAXSERV + 2];
    hook_recorder_line("log_client_connection_success domain=%s binding=%d addr=%s", dr->domain,
                       binding_slot, hook_recorder_addr(addr, a, sizeof(a)));
}

static void hook_recorder_failure(void *closure, struct sockaddr *addr, int err,
                                  domain_record *dr, int binding_slot, struct timeval *now)
{
    (void)closure;
    (void)now;
    char a[NI_MAXHOST + NI_MAXSERV + 2];
    hook_recorder_line("log_client_connection_failure domain=%s binding=%d addr=%s err=0x%x",
                       dr->domain, binding_slot, hook_recorder_addr(addr, a, sizeof(a)),
                       (unsigned)CONN_ERROR(err));
}

static void hook_recorder_throttle(void *closure, int binding_id, domain_record *dr)
{
    (void)closure;
    hook_recorder_line("inc_outbound_conn_throttle domain=%s binding=%d", dr->domain, binding_id);
}

/* The first recipient's domain into `buf`. */
static const char *hook_recorder_rcpt_domain(ec_message *msg, char *buf, int size)
{
    char local[256];
    if (!ec_message_get_envelope(msg, EC_MSG_ENV_TO, local, sizeof(local), buf, size, NULL))
        snprintf(buf, (size_t)size, "none");
    return buf;
}

static int hook_recorder_validate(void *closure, ec_message *msg)
{
    (void)closure;
    char domain[256], want[256], to[256];
    hook_recorder_rcpt_domain(msg, domain, sizeof(domain));
    hook_recorder_option(OPT_REBIND_DOMAIN, want, sizeof(want));
    hook_recorder_option(OPT_REBIND_TO, to, sizeof(to));
    ec_binding_slot before = SAMPLE_MESSAGE_BINDING(msg);
    ec_binding_slot slot = to[0] ? config_get_binding_id_from_name(to) : EC_BINDING_SLOT_UNBOUND;
    int move = want[0] && strcasecmp(domain, want) == 0 && slot >= 0 && slot != before;
    if (move)
        ec_message_change_binding_slot(msg, slot);
    hook_recorder_line("validate_set_binding domain=%s binding=%d moved_to=%d", domain,
                       (int)before, move ? (int)SAMPLE_MESSAGE_BINDING(msg) : -1);
    return EC_HOOK_CONT;
}

static void hook_recorder_post_validate(void *closure, ec_message *m)
{
    (void)closure;
    char domain[256];
    hook_recorder_line("post_validate_set_binding domain=%s binding=%d",
                       hook_recorder_rcpt_domain(m, domain, sizeof(domain)),
                       (int)SAMPLE_MESSAGE_BINDING(m));
}

static int hook_recorder_conf_setup(generic_module_infrastructure *self, int ignoreme)
{
    (void)ignoreme;
    return sample_register(self, hook_recorder_options, option_handle, OPT_COUNT);
}

static int hook_recorder_ext_init(generic_module_infrastructure *self,
                                  ec_config_header *transaction, string *output, int flags)
{
    (void)transaction;
    (void)output;
    if (sample_phase(flags) == SAMPLE_START) {
        hook_recorder_self = self;
        register_core_veto_host_connection_hook_last(hook_recorder_veto_host, self);
        register_core_inc_outbound_connections_hook_last(hook_recorder_inc_connections, self);
        register_core_dec_outbound_connections_hook_last(hook_recorder_dec_connections, self);
        register_core_post_initiate_connection_smtp_hook_last(hook_recorder_initiated, self);
        register_core_log_client_connection_success_hook_last(hook_recorder_success, self);
        register_core_log_client_connection_failure_hook_last(hook_recorder_failure, self);
        register_core_inc_outbound_conn_throttle_hook_last(hook_recorder_throttle, self);
        register_core_validate_set_binding_hook_last(hook_recorder_validate, self);
        register_core_post_validate_set_binding_hook_last(hook_recorder_post_validate, self);
        ec_mod_debug(self, DNOTICE, MODNAME ": ready\n");
    }
    return 0;
}

EC_MODULE_EXPORT
generic_module_infrastructure hook_recorder = {{
    EC_MODULE_INIT(EC_MODULE_TYPE_GENERIC, 0),
    MODNAME,
    "records the outbound and binding hooks' calls",
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
    hook_recorder_conf_setup,
    NULL,
    NULL,
    hook_recorder_ext_init,
}};
