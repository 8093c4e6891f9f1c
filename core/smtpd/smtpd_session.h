/* smtpd_session.h: internal to the SMTP server: one session's state and the helpers its files share. */
#ifndef VIPMTA_CORE_SMTPD_SESSION_H
#define VIPMTA_CORE_SMTPD_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "config/config.h"
#include "log/log.h"
#include "smtpd_parse.h"
#include "spool/spool.h"
#include "smtpd.h"

struct net_io;
struct event;
struct evbuffer;
struct tls_info;
struct smtpd_auth;
struct smtpd_msg;

/* Input is not read past this much while a commit is pending (pipelined input). */
#define SMTPD_INPUT_HIGH (128 * 1024)
/* Command processing pauses while this much output waits for the client. */
#define SMTPD_OUTPUT_HIGH (128 * 1024)
/* Seconds a closing session may take to flush its last reply. */
#define SMTPD_LINGER_SECONDS 5
/* X-Binding values longer than this are ignored. */
#define SMTPD_X_BINDING_MAX 256
/* Header lines are inspected up to this many octets. */
#define SMTPD_HEADER_CAPTURE 1024
/* Message text is handed to the spool in chunks of this size. */
#define SMTPD_DATA_CHUNK 16384
/* Seconds a stopping server or a reload waits for messages modules suspended
 * (then they are answered 451). */
#define SMTPD_HOOKS_STOP_WAIT 5

enum smtpd_state {
    SMTPD_STATE_COMMAND = 0, /* reading commands */
    SMTPD_STATE_DATA,        /* reading message text after 354 */
    SMTPD_STATE_COMMIT,      /* waiting for the spool to make the message durable */
    SMTPD_STATE_CLOSING,     /* flushing the last reply, then closing */
    SMTPD_STATE_TLS,         /* TLS starting: the 220 to STARTTLS drains, then the handshake */
    SMTPD_STATE_AUTH,        /* an AUTH check (or the delay after a failed one) is running */
};

/* Where the DATA scanner is within a line. */
enum smtpd_scan {
    SMTPD_SCAN_BOL = 0, /* at the beginning of a line */
    SMTPD_SCAN_DOT,     /* read "." at the beginning of a line */
    SMTPD_SCAN_DOT_CR,  /* read ".\r" at the beginning of a line */
    SMTPD_SCAN_TEXT,    /* inside a line */
    SMTPD_SCAN_CR,      /* inside a line, read a "\r": CRLF, or a bare CR, the next byte says */
};

/* The DATA phase of one message. */
struct smtpd_data {
    struct spool_writer *writer;
    enum smtpd_scan scan;
    int prev_crlf;          /* the previous line ended with CRLF (not a bare CR or LF) */
    int bare_eol;           /* a line ended with a bare CR or LF (stored as CRLF) */
    time_t deadline;        /* when the DATA phase must be over (smtp.data_deadline) */
    size_t line_len;        /* raw octets of the current line so far */
    uint64_t size;          /* message octets (dot-unstuffed, CRLF lines) */
    uint64_t max_size;      /* 0: no limit */
    int too_big;            /* size went over max_size: discarding */
    int line_too_long;      /* a text line was over SMTPD_TEXT_LINE_MAX */
    int write_errno;        /* spool_writer_write failed: discarding */
    int in_headers;         /* still in the header section */
    int xb_state;           /* 0: no X-Binding yet, 1: in it (folding), 2: done */
    size_t hdr_len;
    size_t xb_len;
    size_t out_len;
    char hdr[SMTPD_HEADER_CAPTURE];
    char x_binding[SMTPD_X_BINDING_MAX];
    char out[SMTPD_DATA_CHUNK];
};

struct smtpd_session {
    struct smtpd_session *prev, *next; /* every open session */
    struct vipmta_config *cfg;         /* held from connect to close: the session finishes
                                        * on the config it started with */
    struct net_io *io;                 /* NULL once the connection is gone */
    struct event *timer;               /* command/data timeout, linger */
    struct sockaddr_storage addr;
    char addr_str[INET6_ADDRSTRLEN];
    enum smtpd_state state;
    int may_relay;                     /* the client is in relay_from */
    unsigned processing : 1;           /* inside smtpd_session_process */
    unsigned peer_eof : 1;             /* the client shut down its side */
    unsigned stopping : 1;             /* server stopping: close after this transaction */
    unsigned discarding : 1;           /* discarding the rest of an over-long command line */
    unsigned output_blocked : 1;       /* waiting for the client to read replies */
    unsigned flushed : 1;              /* CLOSING: output written, write side shut */
    unsigned esmtp : 1;                /* EHLO (not HELO) */
    unsigned smtputf8 : 1;             /* MAIL ... SMTPUTF8 */
    unsigned rcpt_limit_logged : 1;    /* max_recipients reached (logged once) */
    unsigned errors;                   /* protocol errors so far */
    unsigned long messages;            /* messages accepted */
    unsigned rcpt_attempts;            /* RCPT commands in this transaction */
    char *helo;                        /* NULL until HELO/EHLO */
    char *sender;                      /* NULL outside a transaction */
    char **rcpts;
    size_t rcpt_count, rcpt_cap;
    struct smtpd_data *data;           /* DATA state */
    struct spool_envelope *pending;    /* COMMIT: the envelope being made durable */
    struct smtpd_msg *msg;             /* COMMIT: the message while the end-of-DATA hooks
                                        * have it (smtpd_hooks.c), NULL otherwise */
    char queue_id[SPOOL_ID_LEN + 1];   /* "" outside DATA/COMMIT */
    /* TLS and AUTH (smtpd_tls.c, smtpd_auth.c) */
    int listen_index;                  /* its cfg->listen entry, -1: none */
    unsigned tls_switch : 1;           /* STARTTLS answered: TLS starts once the 220 is out */
    struct tls_info *tls;              /* what the handshake negotiated, NULL: clear text */
    char *auth_user;                   /* the user it authenticated as, NULL: none */
    struct smtpd_auth *auth;           /* an AUTH exchange, NULL outside one */
};

/* smtpd_server.c: the server-wide state. */
struct event_base *smtpd_base(void);
void smtpd_registry_remove(struct smtpd_session *s);
/* The key a client at `sa` is counted under for max_sessions_per_ip: its
 * IPv4 address (an IPv4-mapped IPv6 one too), or its IPv6 address cut to
 * `v6_prefix` bits; 0, or -1 for another family. */
int smtpd_client_key(const struct sockaddr *sa, unsigned v6_prefix, unsigned char key[16],
                     int *family);
/* Non-zero while over smtp.busy_percent of smtp.max_sessions are open. */
int smtpd_server_busy(const struct vipmta_config *cfg);

/* smtpd_session.c: the connection. */
struct smtpd_session *smtpd_session_new(int fd, const struct sockaddr *sa, socklen_t salen,
                                        int may_relay, int listen_index);
/* Sets the callbacks and watermarks of s->io and enables it. */
void smtpd_session_setup_io(struct smtpd_session *s);
void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void smtpd_log(const struct smtpd_session *s, enum vipmta_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Counts a protocol error; 1 when the limit was reached (421 sent, closing). */
int smtpd_session_error(struct smtpd_session *s);
/* Flushes the replies queued so far, then closes. */
void smtpd_session_close(struct smtpd_session *s);
/* Processes complete input lines (and DATA text) in order. */
void smtpd_session_process(struct smtpd_session *s);
/* Arms the session timer for `seconds` (0: disarms it). */
void smtpd_session_arm(struct smtpd_session *s, unsigned seconds);
/* Seconds to wait for the next command: command_timeout, or
 * busy_command_timeout while the server is busy. */
unsigned smtpd_session_command_timeout(const struct smtpd_session *s);
/* Arms the timer for the DATA phase: data_timeout for the next read, but
 * never past the phase's deadline (data_deadline). */
void smtpd_session_arm_data(struct smtpd_session *s);
/* The server is stopping: 421 now when idle, after the transaction otherwise. */
void smtpd_session_stop(struct smtpd_session *s);
/* Server stopped: frees the session now (a pending commit keeps it until `done`). */
void smtpd_session_drop_now(struct smtpd_session *s);
/* Frees a session whose connection is already gone. */
void smtpd_session_free(struct smtpd_session *s);
/* Copies `in` into `out` (size `outlen`) with control and non-ASCII bytes as '?'. */
const char *smtpd_printable(const char *in, char *out, size_t outlen);

/* smtpd_command.c: one command line. */
void smtpd_command_run(struct smtpd_session *s, const char *line, size_t len);
/* Forgets MAIL/RCPT state. */
void smtpd_transaction_reset(struct smtpd_session *s);

/* smtpd_data.c: the message text. */
/* Opens the spool writer and writes the Received: header; 0 or -1 (451 sent). */
int smtpd_data_begin(struct smtpd_session *s);
/* Consumes message text from `in`; 1 when the end marker was read (the message
 * was then committed or rejected), 0 when more is needed. */
int smtpd_data_consume(struct smtpd_session *s, struct evbuffer *in);
/* Drops the message being received (timeout, disconnect). */
void smtpd_data_abort(struct smtpd_session *s);
/* Scans `len` bytes of text; sets *used to the bytes consumed. 1 when the
 * end-of-data line was read (it is consumed), 0 otherwise. */
int smtpd_data_scan(struct smtpd_data *d, const char *p, size_t len, size_t *used);
/* Hands buffered text to the spool writer. */
void smtpd_data_flush(struct smtpd_data *d);

/* smtpd_commit.c: the end of DATA. */
void smtpd_commit(struct smtpd_session *s);
/* Writes the envelope and hands the message to the spool: the 250 (or the
 * 451) follows when it is durable (state COMMIT meanwhile). */
void smtpd_commit_spool(struct smtpd_session *s, struct spool_writer *w,
                        struct spool_envelope *env);
/* Back to commands after the transaction (accepted or not). */
void smtpd_commit_end(struct smtpd_session *s);
/* After a reply that ends a transaction: the command timeout and the
 * pipelined input that waited. */
void smtpd_commit_resume_session(struct smtpd_session *s);

/* smtpd_hooks.c: the hooks of a message at acceptance: its binding
 * (binding_group_choose_binding, validate_set_binding,
 * post_validate_set_binding), then the end-of-DATA message hooks
 * (final_validation2, final_validation). */
/* Non-zero when a module registered one of them (the binding choice counts
 * when `in_group`: the message's binding comes from a group). */
int smtpd_hooks_wanted(int in_group);
/* Runs them on the message just received (the session is in COMMIT), whose
 * envelope names the binding `slot` chose by the core (and its group): then
 * smtpd_commit_spool, or the module's refusal; a suspended message waits
 * for its handles (smtpd_hooks_timeout at its deadline). Takes `w` and `env`. */
void smtpd_hooks_start(struct smtpd_session *s, struct spool_writer *w,
                       struct spool_envelope *env, time_t deadline, ec_binding_slot slot);
/* The session's timer fired while the hooks have its message (s->msg):
 * past the deadline (or a stopping server's wait) it is answered 451 and
 * let go. */
void smtpd_hooks_timeout(struct smtpd_session *s);
/* The server stops: a suspended message waits SMTPD_HOOKS_STOP_WAIT at most. */
void smtpd_hooks_stopping(struct smtpd_session *s);
/* The client is gone: the message is let go (discarded once resumed). */
void smtpd_hooks_client_gone(struct smtpd_session *s);
/* Resumes wake the loop through an eventfd on `base`: 0, or -1. */
int smtpd_hooks_init(struct event_base *base);
/* smtpd_hooks_settle, smtpd_hooks_shutdown: smtpd.h */

/* smtpd_tls.c: STARTTLS, implicit TLS, the handshake's end. */
/* The listener entry of the session (NULL: none). */
const struct config_listen *smtpd_tls_listener(const struct smtpd_session *s);
/* s->io for a new connection on `fd`: a TLS server (implicit TLS listener)
 * or a plain socket. 0, or -1 (fd not taken). */
int smtpd_tls_open(struct smtpd_session *s, int fd);
/* EHLO lines for STARTTLS and AUTH. */
void smtpd_tls_ehlo(struct smtpd_session *s);
void smtpd_tls_command(struct smtpd_session *s);
/* The 220 to STARTTLS is out: the connection becomes a TLS server. */
void smtpd_tls_switch(struct smtpd_session *s);
/* The handshake is done (BEV_EVENT_CONNECTED). */
void smtpd_tls_established(struct smtpd_session *s);
/* The handshake failed (BEV_EVENT_ERROR before it completed): logs why. */
void smtpd_tls_failed(struct smtpd_session *s);
/* 1 when require_tls holds `verb` back (the 530 is sent). */
int smtpd_tls_required(struct smtpd_session *s, const char *verb);
/* "ESMTPSA" and the "(using TLSv1.3 with cipher ...)" comment for Received:. */
void smtpd_tls_received(const struct smtpd_session *s, char *protocol, size_t plen, char *comment,
                        size_t clen);

/* smtpd_auth.c: AUTH PLAIN and LOGIN (RFC 4954). */
int smtpd_auth_offered(const struct smtpd_session *s);
void smtpd_auth_command(struct smtpd_session *s, const char *arg);
/* A line while an AUTH exchange waits for the client: 1 when consumed. */
int smtpd_auth_continue(struct smtpd_session *s, const char *line, size_t len);
/* Ends any AUTH exchange (the session closes or TLS starts). */
void smtpd_auth_free(struct smtpd_session *s);

#endif
