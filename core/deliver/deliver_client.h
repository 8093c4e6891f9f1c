/* deliver_client.h: one outbound SMTP session on a connecting socket: greeting, EHLO, pipelined transactions, QUIT. */
#ifndef VIPMTA_CORE_DELIVER_CLIENT_H
#define VIPMTA_CORE_DELIVER_CLIENT_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct queue_rcpt;
struct deliver_client_session;

/* Recipients per transaction (RFC 5321 4.5.3.1.8: servers take at least 100). */
#define DELIVER_CLIENT_MAX_RCPTS 100

/* What happened to one recipient; exactly one per recipient handed to the
 * session by `take`. */
enum deliver_client_outcome {
    DELIVER_CLIENT_DELIVERED, /* RCPT 2xx and final-dot 2xx */
    DELIVER_CLIENT_DEFERRED,  /* 4xx at any stage, or the connection lost after its RCPT was sent */
    DELIVER_CLIENT_FAILED,    /* 5xx (or the message is larger than the server's SIZE) */
    DELIVER_CLIENT_RELEASED,  /* never offered to the server (no attempt) */
};

/* How a session ended. */
enum deliver_client_end {
    DELIVER_CLIENT_END_OK,       /* QUIT after its work (or an idle timeout) */
    DELIVER_CLIENT_END_UNUSABLE, /* connect failed, greeting or EHLO/HELO refused, or the connection was
                         * lost before any transaction: try the next destination */
    DELIVER_CLIENT_END_LOST,     /* lost or timed out after transactions started */
    DELIVER_CLIENT_END_TLS_FAILED, /* unusable: the TLS handshake failed (opportunistic TLS
                                    * may try the host again in clear) */
};

struct tls_info;

struct deliver_client_ops {
    /* The session wants a message: fill `out` with up to `max` recipients of
     * ONE message (queue_take); 0 when there is none (the session idles). */
    size_t (*take)(void *arg, struct queue_rcpt **out, size_t max);
    /* A recipient's outcome; `reply` is the server's reply ("250 2.0.0 ok")
     * or our reason. The recipient belongs to the callee from then on. */
    void (*outcome)(void *arg, struct queue_rcpt *r, enum deliver_client_outcome outcome,
                    const char *reply);
    /* The session is over and has been freed; `reason` says why for
     * DELIVER_CLIENT_END_UNUSABLE / DELIVER_CLIENT_END_LOST. Called once, never from inside a
     * call into the session (deliver_client_start, deliver_client_wake, deliver_client_abort). */
    void (*done)(void *arg, enum deliver_client_end end, const char *reason);
    /* The connection's TLS state is settled: encrypted (`info`), or going on
     * in clear (NULL). Once per session, before any message; may be NULL. */
    void (*tls_settled)(void *arg, const struct tls_info *info);
    /* The TCP connection is established (error 0), or could not be
     * (errno: ETIMEDOUT for the connect timeout). Once per session, maybe
     * from inside deliver_client_start (an immediate failure); may be NULL. */
    void (*connected)(void *arg, int error);
    /* A session whose connection was established ends: called once, just
     * before its socket is closed (from deliver_client_abort too); may be
     * NULL. */
    void (*ending)(void *arg);
};

struct deliver_client_params {
    int fd;                   /* non-blocking, connect() issued; the session owns it */
    const char *ehlo_name;    /* copied */
    const char *peer;         /* "127.0.0.1:25" for messages; copied */
    unsigned connect_timeout; /* seconds: TCP connect plus the greeting */
    unsigned command_timeout; /* seconds: each command reply, and progress while sending data */
    unsigned data_timeout;    /* seconds: the reply to the final dot */
    unsigned idle_timeout_ms; /* how long to stay connected without work before QUIT (0: at once) */
    unsigned max_messages;    /* messages per connection (0: no limit) */
    /* TLS (STARTTLS, RFC 3207) and AUTH (RFC 4954) */
    const struct vipmta_config *cfg; /* its TLS client context; NULL: no TLS */
    int tls_policy;           /* enum config_tls_policy */
    const char *tls_host;     /* the MX or route host name: SNI and the name verified; copied */
    const char *policy_source;/* "domain example.com" / "route *", for reasons; copied */
    const char *auth_user;    /* AUTH to the server after TLS; NULL: none; copied */
    const char *auth_password;
};

/* Starts the session; NULL on out of memory (the fd is closed then). */
struct deliver_client_session *deliver_client_start(struct event_base *base, const struct deliver_client_params *params,
                                  const struct deliver_client_ops *ops, void *arg);
/* What TLS negotiated on the session's connection; NULL in clear (or not yet). */
const struct tls_info *deliver_client_tls(const struct deliver_client_session *s);
/* The session's socket (-1 when none). */
int deliver_client_fd(const struct deliver_client_session *s);
/* Non-zero when the session waits for work (connected, between messages). */
int deliver_client_is_idle(const struct deliver_client_session *s);
/* An idle session asks `take` again now (new work arrived). */
void deliver_client_wake(struct deliver_client_session *s);
/* An idle session sends QUIT now (its connection is not wanted any more);
 * `done` follows as usual. No effect on a session that is not idle. */
void deliver_client_close_idle(struct deliver_client_session *s);
/* Ends the session at once (shutdown): QUIT when idle (best effort), every
 * recipient without an outcome is DELIVER_CLIENT_RELEASED, the fd is closed and the
 * session freed; `done` is NOT called. */
void deliver_client_abort(struct deliver_client_session *s);

/* Dot-stuffing of a body made of CRLF lines (RFC 5321 4.5.2), usable in
 * pieces. `state` starts at 0 (line start) and carries over between calls.
 * Every line end goes out as CRLF (a bare CR or LF becomes one). Writes at
 * most 2 * len + 2 bytes to out and returns the count. */
size_t deliver_client_dot_stuff(const char *in, size_t len, char *out, unsigned *state);
/* The end of data to send after the last piece: CRLF first when the body did
 * not end with one, then ".\r\n". Returns its length (at most 5). */
size_t deliver_client_dot_end(unsigned state, char *out);

#endif
