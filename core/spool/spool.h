/* spool.h: the durable on-disk spool (group-committed writes, per-recipient state, recovery). */
#ifndef VIPMTA_CORE_SPOOL_H
#define VIPMTA_CORE_SPOOL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "vipmta_binding.h"

/* Layout under spool_dir (see docs/spool.md):
 *   queue/ID.body   the message as received (Received: header first, dot-unstuffed, CRLF lines)
 *   queue/ID.env    the envelope, text, one "key value" per line, ending "end SIZE CRC32"
 *                   (values: bytes < 0x20, 0x7f and '%' written as %XX; keys: version, id,
 *                   received, client, helo, sender, binding_group, binding, auth, dsn, smtputf8,
 *                   8bit, header..., rcpt..., end; smtputf8 and 8bit only when 1, auth only for
 *                   SMTP AUTH clients, header only for fields modules added (one line each, in
 *                   order, without its last CRLF); readers ignore keys they do not know)
 *   queue/ID.st     per-recipient outcomes, appended: "D idx time", "B idx time", "T idx attempts next",
 *                   "F idx dsnid" (a bounce in progress); "M binding [group]" (the message
 *                   moved to that binding: the last one wins over the envelope's)
 *   quarantine/     torn or unreadable files moved aside at recovery, with a log line
 * A message is acknowledged (250) only after .body and .env are durable.
 * ID.env is the commit point: a message exists iff its ID.env is complete.
 * IDs: 13 hex digits of microseconds since the epoch + a 3-hex-digit counter,
 * lower case, so sorting ids sorts by arrival. */

#define SPOOL_ID_LEN 16 /* hex characters */

enum spool_rcpt_state {
    SPOOL_RCPT_PENDING = 0,
    SPOOL_RCPT_DELIVERED = 1,
    SPOOL_RCPT_BOUNCED = 2,
};

struct spool_rcpt {
    char *address;             /* without angle brackets */
    enum spool_rcpt_state state;
    unsigned attempts;
    time_t next_attempt;       /* 0: now */
};

struct spool_envelope {
    char id[SPOOL_ID_LEN + 1];
    time_t received;
    char *client_addr;         /* "127.0.0.1" */
    char *helo;
    char *sender;              /* "" for the null sender */
    char *binding_group;       /* assignment: group name or NULL */
    char *binding;             /* assignment: binding name (default: "default") */
    int is_dsn;                /* a bounce we generated: never bounced itself */
    int smtputf8;              /* received with MAIL ... SMTPUTF8 (RFC 6531) */
    int eightbit;              /* the body has bytes over 0x7f (set by spool_writer_commit) */
    uint64_t body_size;
    uint32_t body_crc;
    struct spool_rcpt *rcpts;
    size_t rcpt_count;
    /* When non-NULL, every string above points into this one block
     * (envelopes read from disk); spool_envelope_free then frees just it.
     * Envelopes built by hand leave it NULL and malloc each string. */
    char *strings;
    char *auth_user;           /* the user the client authenticated as (SMTP AUTH), NULL: none */
    /* Header fields modules added at acceptance, each ending with CRLF, in
     * order, NUL-terminated; sent before the body (which body_size and
     * body_crc describe). NULL: none. Always its own allocation (freed by
     * spool_envelope_free in both cases above). */
    char *added_headers;
    size_t added_headers_len;
    /* An envelope read from disk whose message moved to another binding (an
     * M record of ID.st): the block `binding` and `binding_group` point into
     * (freed by spool_envelope_free); NULL otherwise. */
    char *moved;
};

/* Called on the event-loop thread once a write is durable (error 0) or has
 * failed (error = errno). */
typedef void (*spool_done_cb)(void *arg, int error);

struct event_base;

/* Creates queue/ and quarantine/ under `spool_dir` if needed, checks they are
 * writable, starts the sync thread (and its fdatasync helpers). Completions
 * come back to `base` through an eventfd the loop watches, so libevent's
 * thread support is not needed. 0, or -1 with a message in errbuf. */
int spool_init(const char *spool_dir, struct event_base *base, char *errbuf, size_t errlen);
/* Waits for pending syncs, runs their callbacks, stops the thread. Work the
 * callbacks queue (a DSN, a record) is synced and completed here too, on the
 * calling thread. */
void spool_shutdown(void);

/* A message being received. */
struct spool_writer;
/* Starts a new message: assigns its id (unique, sortable by time) and creates
 * its body file. NULL with errno on failure. */
struct spool_writer *spool_writer_open(void);
const char *spool_writer_id(const struct spool_writer *w);
/* Reads the body written so far at `offset`, from memory or from its file
 * (the end-of-DATA hooks read the message through it; until commit or
 * abort). Octets read (0 at the end), or -1 with errno. */
ssize_t spool_writer_pread(const struct spool_writer *w, void *buf, size_t len, uint64_t offset);
/* Appends body bytes. 0, or -1 with errno. */
int spool_writer_write(struct spool_writer *w, const void *data, size_t len);
uint64_t spool_writer_size(const struct spool_writer *w);
/* Discards the message and its files. */
void spool_writer_abort(struct spool_writer *w);
/* The message will never be committed: its files are removed now, while
 * its body stays readable (spool_writer_pread) until
 * spool_writer_abort. */
void spool_writer_unlink(struct spool_writer *w);
/* The body is complete: writes it to its file if it was in memory, and
 * closes the file now (commit and abort need no descriptor), so that a
 * writer may wait (a DSN waits for its F record) holding neither a
 * descriptor nor memory. Writes after this fail (EBADF). 0, or -1 with errno
 * (the body could not be written: abort the writer). */
int spool_writer_close_body(struct spool_writer *w);
/* Writes the envelope (env->id, body_size, body_crc and eightbit are filled
 * in from the writer; received too when 0), queues both files for the next group sync and
 * frees the writer. `env` stays the caller's (only read during the call).
 * Durable means: fdatasync of ID.body and ID.env (or one syncfs, see
 * spool_set_sync_method) and one fsync of queue/ shared by the round. If the
 * sync fails, the files are removed and `done` gets the errno. EINVAL when
 * env has no recipients or an empty recipient address.
 * `done` runs after the sync round that made the message durable: only then
 * may the server answer 250. Returns 0, or -1 with errno (nothing queued, the
 * files are removed; `done` is not called). */
int spool_writer_commit(struct spool_writer *w, struct spool_envelope *env,
                        spool_done_cb done, void *arg);

/* Per-recipient outcomes. Delivered and bounced are durable (group sync)
 * before `done` runs; `done` may be NULL. The line is written before these
 * return (so spool_remove right after is safe); consecutive records of one
 * message share one open file and one fdatasync. */
int spool_record_delivered(const char *id, unsigned rcpt_index, spool_done_cb done, void *arg);
int spool_record_bounced(const char *id, unsigned rcpt_index, spool_done_cb done, void *arg);
/* A bounce in progress: recipient rcpt_index failed and its DSN is
 * being spooled as message `dsn_id` (an "F IDX DSNID" line, durable before
 * `done` runs; write it before DSNID.env exists). Not final: after a stop,
 * recovery counts the recipient bounced only if that DSN is complete in the
 * spool (and then appends its B line), else it stays pending and bounces
 * again. The B record (spool_record_bounced) ends the bounce; see
 * docs/spool.md, "Bounces". */
int spool_record_bouncing(const char *id, unsigned rcpt_index, const char *dsn_id,
                          spool_done_cb done, void *arg);
/* The message moved to binding `binding` (within `group`, NULL: pinned to
 * it): an M record, not synced (losing it only means the message goes back
 * to its old binding after a restart). 0, or -1 with errno. */
int spool_record_binding(const char *id, const char *binding, const char *group);
/* A deferral (not synced: losing it only means an earlier retry). */
int spool_record_deferred(const char *id, unsigned rcpt_index, unsigned attempts,
                          time_t next_attempt);
/* Removes a message whose recipients are all final: unlinks ID.env first
 * (the commit point: the message can never come back), then ID.st and
 * ID.body (leftovers after a crash are deleted by recovery). No sync. */
int spool_remove(const char *id);

/* Opens the body file for reading; fd or -1 with errno. (Delivery and
 * DSNs use spool_body_open, which takes the body from memory when it is
 * there.) */
int spool_open_body(const char *id);

/* Small bodies in memory from acceptance to delivery: while DATA arrives the
 * text is kept in memory (no file yet) as long as it is at most bytes/64 and
 * all the bodies held stay within `bytes`; the sync thread then writes and
 * syncs the files at the commit, and the body stays in memory until the
 * message is removed, so delivery never reads it back. A body over the bound
 * goes to its file as it arrives (the loop writes it), and is read back from
 * there. 0: every body goes to its file. Loop thread; applies to messages
 * that start after the call. */
#define SPOOL_MEMORY_DEFAULT ((size_t)64 << 20)
void spool_set_memory(size_t bytes);
struct spool_memory_stats {
    uint64_t bodies, bytes, limit;   /* now: bodies held for delivery, body bytes held
                                      * (with messages being received), the bound */
    uint64_t kept, spilled;          /* since start: bodies kept in memory; bodies that
                                      * went to their file because of the bound */
    uint64_t reads_memory, reads_file; /* since start: bodies read for delivery or a DSN */
};
void spool_get_memory_stats(struct spool_memory_stats *out);

/* A message's text for reading (delivery, DSNs): from memory when it is
 * there, else from its file: one read path whatever the size. */
struct spool_body;
struct spool_body *spool_body_open(const char *id);   /* NULL with errno */
/* Like read(2): bytes copied, 0 at the end, -1 with errno. */
ssize_t spool_body_read(struct spool_body *b, void *buf, size_t len);
void spool_body_close(struct spool_body *b);

/* Reloads the spool: for every complete message calls `cb` with its envelope
 * (recipient states applied from ID.st; ownership passes to cb); quarantines
 * torn files; removes messages already final and bodies never committed.
 * In id (= arrival) order. Checks per message: ID.env parses and is complete,
 * ID.body exists with the recorded size and (spool_set_verify_crc, default
 * on) CRC-32; failures are moved to quarantine/ with a warning naming the
 * file and the reason. A torn last line of ID.st is ignored and cut off.
 * Files in queue/ that are not ours are left alone (a warning). Stats: messages
 * handed to cb, their pending recipients, messages quarantined, messages
 * removed as all-final. 0, or -1 when queue/ cannot be listed. Loop thread. */
struct spool_recover_stats {
    size_t messages;
    size_t recipients_pending;
    size_t quarantined;
    size_t removed;
};
int spool_recover(void (*cb)(void *arg, struct spool_envelope *env), void *arg,
                  struct spool_recover_stats *stats);

/* Reads one envelope with ID.st applied (tests, vipmtactl); never modifies
 * files. NULL with errno/message. */
struct spool_envelope *spool_read_envelope(const char *id, char *errbuf, size_t errlen);
void spool_envelope_free(struct spool_envelope *env);

/* Counters for metrics and benchmarks. */
struct spool_stats {
    uint64_t sync_rounds;      /* group sync rounds done */
    uint64_t synced_items;     /* files or records made durable */
    uint64_t sync_usec;        /* time spent inside sync rounds, microseconds */
};
void spool_get_stats(struct spool_stats *out);

/* How a round makes its files durable. "fsync" (default): fdatasync
 * of every file written in the round, then one fsync of queue/ for all their
 * directory entries. "syncfs": one syncfs() of the spool's filesystem per
 * round (cheaper with many files per round; also flushes unrelated dirty data
 * of that filesystem). 0, or -1 for an unknown name. Any thread, any time:
 * applies from the next round. */
int spool_set_sync_method(const char *method);
/* Whether spool_recover reads every body to check its CRC-32 against
 * the envelope (default on). Off: only the size is checked, and recovery
 * reads no body data (see docs/spool.md for the cost). */
void spool_set_verify_crc(int on);
/* The spool directory given to spool_init (NULL before/after). */
const char *spool_dir_path(void);

#endif
