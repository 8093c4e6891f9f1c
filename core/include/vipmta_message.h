/* vipmta_message.h: the message as modules see it (ec_message): envelope, content, added header fields, binding, suspension of the end-of-DATA hooks. */
#ifndef VIPMTA_MESSAGE_H
#define VIPMTA_MESSAGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include "vipmta_binding.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A message, as the hooks that get one see it (opaque: Momentum documents
 * struct _ec_message, vipmta gives accessors only). Two kinds:
 *  - at acceptance (the end-of-DATA hooks final_validation2 and
 *    final_validation, the binding hooks validate_set_binding,
 *    post_validate_set_binding and binding_group_choose_binding): the message
 *    just received, with all its recipients, before it is spooled;
 *  - on the delivery side (binding_group_choose_binding when mail moves, the
 *    log hooks log_delivery_v1, log_transient_failure_v1,
 *    log_permanent_failure_v1): a queued message seen through one
 *    recipient, the one the event is about (recipient count 1).
 * A handle is valid for the duration of the hook call (and, at acceptance,
 * until vipmta_message_resume for a suspended message, below). */
typedef struct _ec_message ec_message;
/* The SMTP session a message came in on (opaque; accessors below). Valid
 * during the hook call. */
typedef struct _accept_construct accept_construct;
/* The end-of-DATA hooks' context: the reply to give when a hook rejects or
 * defers (opaque; Momentum documents its members, vipmta gives accessors).
 * Valid during the hook call. */
typedef struct _validate_context validate_context;

/* What a final_validation2 provider returns (Momentum's values). */
#define EC_HOOK_CONT 0  /* go on: the next provider runs, then the message is accepted */
#define EC_HOOK_DONE 1  /* reject the message (550 5.7.1, or the reply given) */
#define EC_HOOK_RETRY 2 /* defer it (451 4.7.1, or the reply given) */

/* ---- the envelope ---- */

/* The queue id ("0062f1a2b3c4d5e6"). */
const char *vipmta_message_id(const ec_message *msg);
/* The envelope sender without angle brackets; "" for the null sender. */
const char *vipmta_message_sender(const ec_message *msg);
/* Recipients: at acceptance every recipient of the message; on the delivery
 * side 1, the recipient the event is about. */
size_t vipmta_message_recipient_count(const ec_message *msg);
/* Recipient `index` (0 .. count-1) without angle brackets; NULL past the end. */
const char *vipmta_message_recipient(const ec_message *msg, size_t index);
/* The binding the message leaves from (at acceptance: the one chosen so
 * far), and the binding group it was chosen from (NULL: a binding named
 * directly, by a rule, X-Binding or a module). */
ec_binding_slot vipmta_message_binding(const ec_message *msg);
const char *vipmta_message_binding_group(const ec_message *msg);
/* While the core picks another binding for the message because a post-bind
 * module vetoed its binding (binding_group_choose_binding): that binding,
 * which the choice must not give; EC_BINDING_SLOT_UNBOUND otherwise. */
ec_binding_slot vipmta_message_excluded_binding(const ec_message *msg);
/* Gives the message binding `slot` (a binding of the configuration; one
 * that cannot be used now makes its mail wait for it). It stays in its
 * group when `slot` is a member of it, else it is pinned to `slot`.
 *  - at acceptance (validate_set_binding, final_validation2,
 *    final_validation, and while suspended): sets the binding it is spooled
 *    with;
 *  - on the delivery side (log_delivery_v1, log_transient_failure_v1,
 *    log_permanent_failure_v1): moves the queued message: its recipients
 *    that are neither final nor in flight go to that binding's queue (from
 *    log_transient_failure_v1 the recipient being deferred too, tried again
 *    from there right away); the new binding is recorded in the spool and
 *    survives a restart.
 * Not from binding_group_choose_binding (return the slot instead).
 * 0, or -1 with errno: EINVAL (no such binding), EPERM (not allowed now),
 * ENOMEM. */
int vipmta_message_set_binding(ec_message *msg, ec_binding_slot slot);

/* ---- the content, as it will be sent ---- */

/* Octets of the message as it will be sent (before dot-stuffing): the header
 * fields added by modules, then the stored message (which starts with the
 * Received: field vipmta adds). This is what SIZE= announces. */
uint64_t vipmta_message_size(const ec_message *msg);
/* Reads up to `len` octets of the message as it will be sent, from octet
 * `offset` (pread semantics: the count read, 0 at or past the end, -1 with
 * errno on an error). Lines end with CRLF; nothing is dot-stuffed. Safe
 * from the holder's own thread while the message is suspended. */
ssize_t vipmta_message_read(ec_message *msg, uint64_t offset, void *buf, size_t len);
/* The header section as it will be sent: from the first octet through the
 * empty line that ends it (CRLF CRLF included), or the whole message when it
 * has no body; at most VIPMTA_MESSAGE_HEADERS_MAX octets (cut at a line end).
 * A NUL-terminated copy the caller frees with free(); its length in *len
 * (when len is not NULL). NULL with errno on an error. */
#define VIPMTA_MESSAGE_HEADERS_MAX (1024 * 1024)
char *vipmta_message_get_headers(ec_message *msg, size_t *len);

/* ---- adding header fields ---- */

/* Adds the header field `name: value` to the message, after the fields
 * added before it, all of them before the stored message. Allowed only at
 * acceptance, during the end-of-DATA hooks (final_validation2,
 * final_validation) and while the message is suspended. The field is stored
 * with the message and sent on every delivery attempt, after a restart too;
 * it counts in the message's size and is dot-stuffed like the rest.
 * `name`: 1 to 76 printable ASCII characters but ':' (RFC 5322 ftext).
 * `value`: printable ASCII and HTAB; it may be folded: a line break (CRLF,
 * or LF, which is stored as CRLF) must be followed by a space or a tab and
 * by more than white space. The field is written `name ": " value CRLF`, or
 * `name ":" value CRLF` when value starts with a space or a tab (so a signer
 * knows the exact octets). No line of the field may pass 998 octets, and
 * all the fields added to one message together VIPMTA_MESSAGE_ADDED_MAX.
 * 0, or -1 with errno: EINVAL (a bad name or value), E2BIG (a line or the
 * total too long), EPERM (not allowed now), ENOMEM. */
#define VIPMTA_MESSAGE_ADDED_MAX (64 * 1024)
int vipmta_message_add_header(ec_message *msg, const char *name, const char *value);
/* Number of header fields added to the message so far. */
size_t vipmta_message_added_headers(const ec_message *msg);

/* ---- suspending the end-of-DATA hooks (asynchronous providers) ---- */

/* A provider of final_validation2 or final_validation that has work to do
 * off the event loop (signing on a worker pool, a lookup) suspends the
 * message, hands the handle to its worker and returns EC_HOOK_CONT: the
 * core sends no reply for the message until every handle of it is resumed.
 * Meanwhile the holder may call the accessors of this header (read,
 * get_headers, add_header...) from its own thread; the core does not touch
 * the message. Other providers of the chain run meanwhile; final_validation
 * runs once every handle taken in final_validation2 was resumed with
 * EC_HOOK_CONT. NULL with errno EPERM outside those hooks, ENOMEM. */
typedef struct vipmta_message_handle vipmta_message_handle;
vipmta_message_handle *vipmta_message_suspend(ec_message *msg);
/* Ends a suspension, from any thread, exactly once per handle (the handle
 * is invalid afterwards): `result` EC_HOOK_CONT, EC_HOOK_DONE (reject) or
 * EC_HOOK_RETRY (defer); `reply` NULL (550 5.7.1 / 451 4.7.1) or a full
 * one-line reply of the right class, "550 5.7.1 text" / "451 4.7.1 text",
 * copied. The first rejection or deferral of a message decides its reply.
 * A message not resumed within smtp.data_deadline (counted from DATA) is
 * answered 451 4.3.0 (logged, naming the module); a client that disconnects
 * meanwhile never gets a reply; a stop or reload of the daemon waits a few
 * seconds, then answers 451. In every case the message is discarded only
 * once every handle was resumed, so the holder may go on reading it. */
void vipmta_message_resume(vipmta_message_handle *handle, int result, const char *reply);

/* ---- the session (accept_construct) ---- */

/* The client's address ("192.0.2.1", "2001:db8::1"). */
const char *vipmta_accept_client_address(const accept_construct *ac);
/* The client's socket address (with its port) and its length in *len. */
const struct sockaddr *vipmta_accept_client_sockaddr(const accept_construct *ac, socklen_t *len);
/* The name the client gave in HELO/EHLO ("" when it gave none). */
const char *vipmta_accept_helo(const accept_construct *ac);
/* The user the client authenticated as with SMTP AUTH, NULL when none. */
const char *vipmta_accept_auth_user(const accept_construct *ac);
/* The TLS version of the session ("TLSv1.3"), NULL in clear text. */
const char *vipmta_accept_tls_version(const accept_construct *ac);

/* ---- the reply (validate_context) ---- */

/* The reply to send when this provider returns EC_HOOK_DONE or
 * EC_HOOK_RETRY: a full one-line reply of the class the result calls for
 * ("550 5.7.1 text" for DONE, "451 4.7.1 text" for RETRY), copied; NULL
 * clears it. A reply of another class or shape is ignored (logged). */
void vipmta_validate_set_reply(validate_context *ctx, const char *reply);
/* The reply set so far (NULL: none). */
const char *vipmta_validate_reply(const validate_context *ctx);

#ifdef __cplusplus
}
#endif
#endif
