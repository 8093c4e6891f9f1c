/* spool_internal.h: what the spool's own files (spool*.c) share. */
#ifndef VIPMTA_CORE_SPOOL_INTERNAL_H
#define VIPMTA_CORE_SPOOL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "spool.h"

/* Directory fds, valid between spool_init and spool_shutdown (-1 otherwise). */
extern int spool_queue_fd;
extern int spool_quarantine_fd;
/* Verify body CRCs at recovery (spool_set_verify_crc). */
extern int spool_verify_crc;

/* Tests: while on, the sync thread starts no round (items accumulate). */
void spool_sync_hold(int on);

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32()): start with crc = 0. */
uint32_t spool_crc32(uint32_t crc, const void *data, size_t len);

/* "ID.ext" into buf (at least SPOOL_ID_LEN + 6 bytes). */
void spool_name(char *buf, const char *id, const char *ext);
/* Non-zero when `s` is exactly SPOOL_ID_LEN lower-case hex digits followed by NUL or '.'. */
int spool_id_valid(const char *s);

/* A growable byte buffer. */
struct spool_buf {
    char *data;
    size_t len, cap;
};
int spool_buf_reserve(struct spool_buf *b, size_t more);
int spool_buf_add(struct spool_buf *b, const char *s, size_t n);
void spool_buf_free(struct spool_buf *b);

/* Serialises `env` (id, body_size and body_crc as set) into `out`, ending
 * with the "end" line. 0 or -1 (ENOMEM). */
int spool_env_format(const struct spool_envelope *env, struct spool_buf *out);
/* "M BINDING [GROUP]\n" (escaped) into buf: its length, or -1 when it
 * does not fit (or out of memory). */
int spool_st_binding_line(char *buf, size_t size, const char *binding, const char *group);
/* Non-zero when [f, f+n) is one header field as the envelope stores it:
 * a name of printable ASCII, ':', then printable ASCII and HTAB, every line
 * break a CRLF followed by a space or a tab; no last CRLF. */
int spool_header_field_ok(const char *f, size_t n);
/* Parses an envelope text of `len` bytes in place (`text` must have room for
 * one more byte, and becomes env->strings). NULL with a reason in errbuf;
 * `text` is freed in every case. */
struct spool_envelope *spool_env_parse(char *text, size_t len, char *errbuf, size_t errlen);
/* Reads ID.env into a parsed envelope (recipient states NOT applied). */
struct spool_envelope *spool_env_load(const char *id, char *errbuf, size_t errlen);
/* Applies ID.st to env's recipients (a torn last line is ignored; with
 * `repair`, used by recovery only, it is also cut off the file so that the
 * next append starts a line of its own). 0, or -1 with errno when the file
 * exists but cannot be read. */
int spool_st_apply(struct spool_envelope *env, int repair);

/* An "F IDX DSNID" record of ID.st: recipient IDX failed and its DSN was
 * being spooled as message DSNID (docs/spool.md, "Bounces"). */
struct spool_st_bounce {
    unsigned rcpt;
    char dsn[SPOOL_ID_LEN + 1];
};
/* spool_bounce.c: settles the recipients of env that have an F record and
 * no final one (v[0..n)): bounced when their DSN is complete in queue/ (its
 * envelope parses and its body matches it), else left pending (the DSN never
 * became durable, so the bounce is made again). With fd >= 0 (ID.st, open
 * for writing: recovery) each one found bounced gets its B line appended and
 * made durable before this returns, and each decision is logged. */
void spool_bounce_resolve(struct spool_envelope *env, const struct spool_st_bounce *v, size_t n,
                          int fd);
/* spool_recover.c: checks ID.body against env: its size, and its CRC-32 when
 * spool_verify_crc, read through buf (buflen bytes). 0, or -1 with the reason. */
int spool_body_check(const struct spool_envelope *env, unsigned char *buf, size_t buflen,
                     char *errbuf, size_t errlen);

/* spool_sync.c: parallel fdatasync of a round's files. */
struct spool_sync_item;
struct spool_fdsync {
    int fd;
    int error;                     /* set: 0 or errno */
    struct spool_sync_item *owner; /* the caller's */
};
int spool_pool_start(void);
void spool_pool_stop(void);
/* Starts writeback of all, then fdatasyncs them in parallel; returns when all are done. */
void spool_pool_fdatasync(struct spool_fdsync *v, size_t n);

/* spool_reap.c: removal of finished messages on a thread of its own. */
int spool_reap_start(void);
/* Removes everything handed over, then stops the thread. */
void spool_reap_stop(void);
/* Queues the message's files for removal (removed at once when the thread
 * is not running or memory is short). Always 0. */
int spool_reap_add(const char *id);
/* Waits until every message handed over so far is removed (tests, shutdown). */
void spool_reap_flush(void);
/* Hands the removals of this loop iteration to the thread (spool_handoff). */
void spool_reap_handoff(void);
/* Asks for a hand-off at the end of this loop iteration (spool.c). */
void spool_handoff_soon(void);

/* spool_mem.c: the memory bound of bodies (loop thread). A writer may hold
 * one more body bytes only after spool_mem_take(len) == 0; the bytes are
 * given back when the body is dropped, or when the message it was kept for
 * is removed. */
size_t spool_mem_message_max(void);
int spool_mem_take(size_t len);
void spool_mem_give_back(size_t len);
/* The message was committed: keeps `body` (charged already; taken over) for
 * spool_body_open until spool_mem_drop. */
void spool_mem_keep(const char *id, struct spool_buf *body);
void spool_mem_drop(const char *id);
void spool_mem_clear(void);
/* A writer's body went over the bound and to its file. */
void spool_mem_spilled(void);

/* Writes all of buf (EINTR and short writes retried); 0 or -1 with errno. */
int spool_write_all(int fd, const void *buf, size_t len);

#endif
