/* plugin_message.h: the core's side of the message handle modules get (ec_message), of the session (accept_construct) and of the end-of-DATA context (validate_context). */
#ifndef VIPMTA_CORE_PLUGIN_MESSAGE_H
#define VIPMTA_CORE_PLUGIN_MESSAGE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "spool/spool.h"
#include "vipmta_message.h"

/* A reply a module gives: "550 5.7.1 text", at most this long. */
#define PLUGIN_MESSAGE_REPLY_MAX 512

struct _accept_construct {
    const char *client_address;
    struct sockaddr_storage client_sockaddr;
    socklen_t client_len;
    const char *helo;
    const char *auth_user;   /* NULL: none */
    const char *tls_version; /* NULL: clear text */
};

struct _validate_context {
    char reply[PLUGIN_MESSAGE_REPLY_MAX]; /* "": none */
};

enum plugin_message_kind {
    PLUGIN_MESSAGE_ACCEPT, /* the message being received, before it is spooled */
    PLUGIN_MESSAGE_QUEUED, /* a queued message, seen through one recipient */
};

/* What a hook's ec_message is. At acceptance the core and a suspended
 * message's holders may use it from several threads: `lock` guards the
 * added fields and the binding then (`locking`). */
struct _ec_message {
    enum plugin_message_kind kind;
    int locking;
    pthread_mutex_t lock;
    const char *id;
    const char *sender;
    const struct spool_rcpt *rcpts;
    size_t rcpt_count;
    struct spool_rcpt one;              /* a queued message's recipient (rcpts points here) */
    ec_binding_slot binding;
    const char *group;                  /* NULL: a binding named directly */
    ec_binding_slot exclude;            /* the binding a veto makes it leave (choice hook) */
    /* vipmta_message_set_binding allowed now: 1 (the handle's fields are
     * set, under the lock), or through `rebind` (a queued message moves),
     * 0: EPERM */
    int may_rebind;
    int (*rebind)(ec_message *msg, ec_binding_slot slot, const char *group);
    /* the message being received: its writer (read from memory or its file) */
    const struct spool_writer *writer;
    /* a queued message: its body file (-1: opened on the first read, by id) */
    int body_fd;
    int own_fd;                         /* body_fd was opened here: closed with the handle */
    uint64_t body_size;
    /* header fields added by modules, each ending with CRLF, in order */
    char *added;
    size_t added_len, added_cap, added_count;
    int added_owned;                    /* `added` is this handle's (else the queue's) */
    int may_add;                        /* add_header allowed now */
    /* suspension: the core's handler while the end-of-DATA hooks run, else NULL */
    vipmta_message_handle *(*suspend)(ec_message *msg);
    void *owner;                        /* the core's object behind the handle */
};

/* A handle on the message being received: `rcpts` (count) and the strings
 * belong to the caller and outlive it; the body is read through `writer`
 * (spool_writer_pread: from memory or its file) of `body_size` octets.
 * Initialises the lock. */
void plugin_message_init_accept(ec_message *msg, const char *id, const char *sender,
                                const struct spool_rcpt *rcpts, size_t rcpt_count,
                                const struct spool_writer *writer, uint64_t body_size);
/* A handle on queued message `id` seen through recipient `rcpt`: the fields
 * modules added are `added` (len octets, the queue's); the body is opened
 * on the first read. No lock: the delivery loop's thread only. */
void plugin_message_init_queued(ec_message *msg, const char *id, const char *sender,
                                const char *rcpt, ec_binding_slot binding, const char *group,
                                uint64_t body_size, const char *added, size_t added_len);
/* Frees what the handle holds (a body file it opened, its added fields,
 * its lock). */
void plugin_message_release(ec_message *msg);
/* The added fields (each ending with CRLF) handed over, NULL when none: the
 * caller frees them; the handle has none afterwards. */
char *plugin_message_take_added(ec_message *msg, size_t *len);

/* Non-zero when `reply` is a one-line SMTP reply "Dxx D.x.y text" (text
 * optional) of class `cls` ('4' or '5'), printable ASCII, at most
 * PLUGIN_MESSAGE_REPLY_MAX - 1 octets. */
int plugin_message_reply_ok(const char *reply, char cls);
/* Checks `name` and `value` as vipmta_message_add_header does and appends
 * the field (its line ends as CRLF) to `out` (used, size): 0, or -1 with
 * errno. */
int plugin_message_format_field(const char *name, const char *value, char **out, size_t *len,
                                size_t *cap, size_t max_total);

#endif
