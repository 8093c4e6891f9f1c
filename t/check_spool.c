/* check_spool.c: Check suite for the spool: commit and group sync, formats, recovery, quarantine. */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "spool/spool.h"
#include "spool/spool_internal.h"
#include "lib/spoolfix.h"

static char dir[64];
static struct event_base *base;

static void setup(void)
{
    char err[256];
    strcpy(dir, "/tmp/check_spool.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    spool_set_sync_method("fsync");
    spool_set_verify_crc(1);
    spool_set_memory(SPOOL_MEMORY_DEFAULT);
    ck_assert_msg(spool_init(dir, base, err, sizeof(err)) == 0, "spool_init: %s", err);
}

static void teardown(void)
{
    spool_shutdown();
    event_base_free(base);
    spoolfix_rm_rf(dir);
}

/* ---- helpers ---- */

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static struct spool_envelope *make_env(const char *sender, size_t nrcpt)
{
    struct spool_envelope *env = calloc(1, sizeof(*env));
    env->received = 1700000000;
    env->client_addr = xstrdup("127.0.0.1");
    env->helo = xstrdup("client.example");
    env->sender = xstrdup(sender);
    env->binding = xstrdup("default");
    env->rcpts = calloc(nrcpt, sizeof(*env->rcpts));
    env->rcpt_count = nrcpt;
    for (size_t i = 0; i < nrcpt; i++) {
        char a[64];
        snprintf(a, sizeof(a), "user%zu@dest%zu.example", i, i % 3);
        env->rcpts[i].address = strdup(a);
    }
    return env;
}

/* Writes and commits a message; returns its id in `id` (not waiting). */
static void commit_msg(struct spool_envelope *env, const char *body, char id[SPOOL_ID_LEN + 1],
                       struct spoolfix_done *d)
{
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    size_t len = strlen(body);
    /* in two pieces, as the server does */
    ck_assert_int_eq(spool_writer_write(w, body, len / 2), 0);
    ck_assert_int_eq(spool_writer_write(w, body + len / 2, len - len / 2), 0);
    ck_assert_uint_eq(spool_writer_size(w), len);
    memcpy(id, spool_writer_id(w), SPOOL_ID_LEN + 1);
    ck_assert_int_eq(spool_writer_commit(w, env, spoolfix_on_done, d), 0);
    ck_assert_str_eq(env->id, id);
}

/* Commits and waits for durability. */
static void commit_sync(struct spool_envelope *env, const char *body, char id[SPOOL_ID_LEN + 1])
{
    struct spoolfix_done d = {0};
    commit_msg(env, body, id, &d);
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(d.error, 0);
}

static int qexists(const char *sub, const char *id, const char *ext)
{
    return spoolfix_exists(dir, sub, id, ext);
}

static char *read_file(const char *sub, const char *id, const char *ext, size_t *len)
{
    return spoolfix_read_file(dir, sub, id, ext, len);
}

static void write_file(const char *sub, const char *id, const char *ext, const char *data,
                       size_t len, int append)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s/%s.%s", dir, sub, id, ext);
    FILE *f = fopen(p, append ? "ab" : "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static const char *BODY = "Received: from client.example\r\nSubject: test\r\n\r\nHello.\r\n";

/* ---- tests ---- */

START_TEST(test_commit_done)
{
    char id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("alice@example.org", 2);
    struct spoolfix_done d = {0};
    commit_msg(env, BODY, id, &d);
    ck_assert_int_eq(d.called, 0); /* never before the round */
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(d.error, 0);
    ck_assert(qexists("queue", id, "body"));
    ck_assert(qexists("queue", id, "env"));
    ck_assert_uint_eq(env->body_size, strlen(BODY));
    struct spool_stats st;
    spool_get_stats(&st);
    ck_assert_uint_ge(st.sync_rounds, 1);
    ck_assert_uint_ge(st.synced_items, 2);
    spool_envelope_free(env);
}
END_TEST

START_TEST(test_commit_refuses_no_recipients)
{
    struct spool_envelope *env = make_env("a@example.org", 0);
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    char id[SPOOL_ID_LEN + 1];
    strcpy(id, spool_writer_id(w));
    struct spoolfix_done d = {0};
    errno = 0;
    ck_assert_int_eq(spool_writer_commit(w, env, spoolfix_on_done, &d), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert(!qexists("queue", id, "body"));
    ck_assert(!qexists("queue", id, "env"));
    spool_envelope_free(env);
}
END_TEST

START_TEST(test_ids_unique_sorted)
{
    char prev[SPOOL_ID_LEN + 1] = "";
    for (int i = 0; i < 1000; i++) {
        struct spool_writer *w = spool_writer_open();
        ck_assert_ptr_nonnull(w);
        const char *id = spool_writer_id(w);
        ck_assert_uint_eq(strlen(id), SPOOL_ID_LEN);
        ck_assert_msg(strcmp(prev, id) < 0, "%s then %s", prev, id);
        strcpy(prev, id);
        spool_writer_abort(w);
        ck_assert(!qexists("queue", prev, "body"));
    }
}
END_TEST

START_TEST(test_crc_known_value)
{
    char id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("a@b.example", 1);
    commit_sync(env, "123456789", id);
    ck_assert_uint_eq(env->body_crc, 0xCBF43926u); /* the standard CRC-32 check value */
    ck_assert_uint_eq(env->body_size, 9);
    spool_envelope_free(env);
}
END_TEST

START_TEST(test_envelope_round_trip)
{
    char id[SPOOL_ID_LEN + 1], err[256];
    struct spool_envelope *env = make_env("", 3); /* null sender */
    free(env->helo);
    env->helo = strdup("evil\r\nrcpt x@y 100% sure");
    env->binding_group = strdup("outbound");
    free(env->binding);
    env->binding = strdup("b1");
    env->is_dsn = 1;
    commit_sync(env, BODY, id);

    size_t len;
    char *text = read_file("queue", id, "env", &len);
    ck_assert_ptr_null(strstr(text, "\r")); /* no raw CR anywhere */
    ck_assert_ptr_nonnull(strstr(text, "helo evil%0d%0arcpt x@y 100%25 sure\n"));
    ck_assert_ptr_nonnull(strstr(text, "version 1\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nsender \n"));
    free(text);

    struct spool_envelope *rd = spool_read_envelope(id, err, sizeof(err));
    ck_assert_msg(rd != NULL, "%s", err);
    ck_assert_str_eq(rd->id, id);
    ck_assert_int_eq(rd->received, 1700000000);
    ck_assert_str_eq(rd->client_addr, "127.0.0.1");
    ck_assert_str_eq(rd->helo, "evil\r\nrcpt x@y 100% sure");
    ck_assert_str_eq(rd->sender, "");
    ck_assert_str_eq(rd->binding_group, "outbound");
    ck_assert_str_eq(rd->binding, "b1");
    ck_assert_int_eq(rd->is_dsn, 1);
    ck_assert_uint_eq(rd->body_size, strlen(BODY));
    ck_assert_uint_eq(rd->body_crc, env->body_crc);
    ck_assert_ptr_null(rd->added_headers); /* no header line: no field added */
    ck_assert_uint_eq(rd->rcpt_count, 3);
    for (size_t i = 0; i < 3; i++) {
        ck_assert_str_eq(rd->rcpts[i].address, env->rcpts[i].address);
        ck_assert_int_eq(rd->rcpts[i].state, SPOOL_RCPT_PENDING);
    }
    spool_envelope_free(rd);

    /* the body reads back as written */
    int fd = spool_open_body(id);
    ck_assert_int_ge(fd, 0);
    char buf[256];
    ssize_t n = read(fd, buf, sizeof(buf));
    close(fd);
    ck_assert_int_eq(n, (ssize_t)strlen(BODY));
    ck_assert(memcmp(buf, BODY, (size_t)n) == 0);
    spool_envelope_free(env);

    ck_assert_ptr_null(spool_read_envelope("nothex", err, sizeof(err)));
    ck_assert_ptr_null(spool_read_envelope("0123456789abcdef", err, sizeof(err)));
}
END_TEST

/* Header fields modules added: one escaped "header" line each, in order,
 * read back as they were; the body and its size do not include them. */
START_TEST(test_envelope_added_headers)
{
    char id[SPOOL_ID_LEN + 1], err[256];
    static const char fields[] = "X-A: 1\r\nX-B: two\r\n\tlines 100%\r\nDKIM-Signature: v=1;\r\n b=x\r\n";
    struct spool_envelope *env = make_env("a@b.example", 1);
    env->added_headers = strdup(fields);
    env->added_headers_len = strlen(fields);
    commit_sync(env, BODY, id);

    size_t len;
    char *text = read_file("queue", id, "env", &len);
    ck_assert_ptr_nonnull(strstr(text, "\nheader X-A: 1\nheader X-B: two%0d%0a%09lines 100%25\n"
                                       "header DKIM-Signature: v=1;%0d%0a b=x\nrcpt "));
    free(text);
    struct spool_envelope *rd = spool_read_envelope(id, err, sizeof(err));
    ck_assert_msg(rd != NULL, "%s", err);
    ck_assert_uint_eq(rd->added_headers_len, strlen(fields));
    ck_assert_str_eq(rd->added_headers, fields);
    ck_assert_uint_eq(rd->body_size, strlen(BODY));
    spool_envelope_free(rd);
    spool_envelope_free(env);

    /* a field that would smuggle a line of its own is refused as corrupt */
    static const char *const bad[] = {"X-A: 1%0aBcc: x", "X-A: 1%0d%0aBcc: x", "X-A 1",
                                      ": x", "X-A: 1%0d", "X-A: %0d%0a%09"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char raw[512];
        int n = snprintf(raw, sizeof(raw), "version 1\nid %s\nreceived 1\nsender a@b\nheader %s\n"
                         "rcpt c@d\nend 0 00000000\n", id, bad[i]);
        char *copy = malloc((size_t)n + 1);
        memcpy(copy, raw, (size_t)n);
        struct spool_envelope *e = spool_env_parse(copy, (size_t)n, err, sizeof(err));
        ck_assert_msg(e == NULL, "accepted header %s", bad[i]);
        ck_assert_str_eq(err, "line 5: bad header field");
    }
}
END_TEST

START_TEST(test_recover_states)
{
    char id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("alice@example.org", 5);
    commit_sync(env, BODY, id);
    spool_envelope_free(env);

    struct spoolfix_done d = {0};
    ck_assert_int_eq(spool_record_delivered(id, 0, spoolfix_on_done, &d), 0);
    ck_assert_int_eq(spool_record_bounced(id, 2, spoolfix_on_done, &d), 0);
    ck_assert_int_eq(spool_record_deferred(id, 1, 3, 1800000000), 0);
    ck_assert_int_eq(spool_record_deferred(id, 4, 1, 1800000100), 0);
    ck_assert_int_eq(spool_record_deferred(id, 4, 2, 1800000200), 0); /* the last one counts */
    spoolfix_run_until(base, &d.called, 2);
    ck_assert_int_eq(d.error, 0);
    /* a deferral of a recipient already final changes nothing */
    ck_assert_int_eq(spool_record_deferred(id, 0, 9, 1900000000), 0);
    /* a crash in the middle of an append: the partial line is ignored */
    write_file("queue", id, "st", "D 3 17", 6, 1);

    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_uint_eq(st.messages, 1);
    ck_assert_uint_eq(st.recipients_pending, 3);
    ck_assert_uint_eq(st.quarantined, 0);
    ck_assert_uint_eq(st.removed, 0);
    struct spool_envelope *r = c.env[0];
    ck_assert_str_eq(r->id, id);
    ck_assert_int_eq(r->rcpts[0].state, SPOOL_RCPT_DELIVERED);
    ck_assert_int_eq(r->rcpts[1].state, SPOOL_RCPT_PENDING);
    ck_assert_uint_eq(r->rcpts[1].attempts, 3);
    ck_assert_int_eq(r->rcpts[1].next_attempt, 1800000000);
    ck_assert_int_eq(r->rcpts[2].state, SPOOL_RCPT_BOUNCED);
    ck_assert_int_eq(r->rcpts[3].state, SPOOL_RCPT_PENDING);
    ck_assert_uint_eq(r->rcpts[3].attempts, 0);
    ck_assert_uint_eq(r->rcpts[4].attempts, 2);
    ck_assert_int_eq(r->rcpts[4].next_attempt, 1800000200);
    spoolfix_collected_free(&c);

    /* the torn tail was cut: a new record lands on a line of its own */
    size_t len;
    char *text = read_file("queue", id, "st", &len);
    ck_assert(len > 0 && text[len - 1] == '\n');
    free(text);
    d.called = 0;
    ck_assert_int_eq(spool_record_delivered(id, 3, spoolfix_on_done, &d), 0);
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_int_eq(c.env[0]->rcpts[3].state, SPOOL_RCPT_DELIVERED);
    ck_assert_uint_eq(st.recipients_pending, 2);
    spoolfix_collected_free(&c);
}
END_TEST

START_TEST(test_torn_env_quarantined)
{
    char id[SPOOL_ID_LEN + 1], keep[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("alice@example.org", 2);
    commit_sync(env, BODY, id);
    spool_envelope_free(env);
    env = make_env("bob@example.org", 1);
    commit_sync(env, BODY, keep);
    spool_envelope_free(env);

    /* cut the end line off (a write that did not finish) */
    size_t len;
    char *text = read_file("queue", id, "env", &len);
    char *end = strstr(text, "end ");
    ck_assert_ptr_nonnull(end);
    write_file("queue", id, "env", text, (size_t)(end - text) + 5, 0);
    free(text);

    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(st.quarantined, 1);
    ck_assert_uint_eq(st.messages, 1);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.env[0]->id, keep);
    spoolfix_collected_free(&c);
    ck_assert(!qexists("queue", id, "env"));
    ck_assert(!qexists("queue", id, "body"));
    ck_assert(qexists("quarantine", id, "env"));
    ck_assert(qexists("quarantine", id, "body"));
}
END_TEST

START_TEST(test_garbage_env_quarantined)
{
    /* zeros where the envelope should be, then random text with an end line */
    static const char zeros[64];
    write_file("queue", "0000000000000001", "env", zeros, sizeof(zeros), 0);
    write_file("queue", "0000000000000001", "body", "x", 1, 0);
    const char *bad = "version 1\nid 0000000000000002\nreceived 5\nsender a@b\nend 1 00000000\n";
    write_file("queue", "0000000000000002", "env", bad, strlen(bad), 0); /* no rcpt */
    write_file("queue", "0000000000000002", "body", "x", 1, 0);
    const char *wrongid = "version 1\nid 0000000000000009\nreceived 5\nsender a@b\nrcpt c@d\n"
                          "end 1 00000000\n";
    write_file("queue", "0000000000000003", "env", wrongid, strlen(wrongid), 0);
    write_file("queue", "0000000000000003", "body", "x", 1, 0);
    write_file("queue", "README", "txt", "hi", 2, 0); /* not ours: left alone */

    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_uint_eq(st.quarantined, 3);
    ck_assert(qexists("quarantine", "0000000000000001", "env"));
    ck_assert(qexists("quarantine", "0000000000000002", "env"));
    ck_assert(qexists("quarantine", "0000000000000003", "body"));
    ck_assert(qexists("queue", "README", "txt"));
}
END_TEST

START_TEST(test_body_checks)
{
    char short_id[SPOOL_ID_LEN + 1], crc_id[SPOOL_ID_LEN + 1], gone_id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("a@example.org", 1);
    commit_sync(env, BODY, short_id);
    spool_envelope_free(env);
    env = make_env("a@example.org", 1);
    commit_sync(env, BODY, crc_id);
    spool_envelope_free(env);
    env = make_env("a@example.org", 1);
    commit_sync(env, BODY, gone_id);
    spool_envelope_free(env);

    write_file("queue", short_id, "body", BODY, strlen(BODY) - 3, 0); /* truncated */
    char *flipped = strdup(BODY);
    flipped[5] ^= 1;
    write_file("queue", crc_id, "body", flipped, strlen(flipped), 0); /* same size, bad CRC */
    free(flipped);
    char p[256];
    snprintf(p, sizeof(p), "%s/queue/%s.body", dir, gone_id);
    unlink(p);

    /* CRC check off: only the size is checked */
    spool_set_verify_crc(0);
    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(st.quarantined, 2);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.env[0]->id, crc_id);
    spoolfix_collected_free(&c);
    ck_assert(qexists("quarantine", short_id, "body"));
    ck_assert(qexists("quarantine", gone_id, "env"));

    spool_set_verify_crc(1);
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(st.quarantined, 1);
    ck_assert_uint_eq(c.n, 0);
    ck_assert(qexists("quarantine", crc_id, "body"));
}
END_TEST

START_TEST(test_orphan_body_removed)
{
    /* a body whose envelope never got written (crash during DATA of a body
     * too large to be kept in memory: here, no memory for bodies at all) */
    spool_set_memory(0);
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    char id[SPOOL_ID_LEN + 1];
    strcpy(id, spool_writer_id(w));
    ck_assert_int_eq(spool_writer_write(w, BODY, strlen(BODY)), 0);
    ck_assert(qexists("queue", id, "body"));
    /* what the crash leaves: the file (the writer is dropped by aborting a copy) */
    size_t len;
    char *saved = read_file("queue", id, "body", &len);
    spool_writer_abort(w);
    write_file("queue", id, "body", saved, len, 0);
    write_file("queue", id, "st", "T 0 1 5\n", 8, 0);
    free(saved);

    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_uint_eq(st.quarantined, 0);
    ck_assert(!qexists("queue", id, "body"));
    ck_assert(!qexists("queue", id, "st"));
    ck_assert(!qexists("quarantine", id, "body"));
}
END_TEST

START_TEST(test_all_final_removed)
{
    char id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("a@example.org", 2);
    commit_sync(env, BODY, id);
    spool_envelope_free(env);
    struct spoolfix_done d = {0};
    ck_assert_int_eq(spool_record_delivered(id, 0, spoolfix_on_done, &d), 0);
    ck_assert_int_eq(spool_record_bounced(id, 1, spoolfix_on_done, &d), 0);
    spoolfix_run_until(base, &d.called, 2);

    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_uint_eq(st.removed, 1);
    ck_assert_uint_eq(st.messages, 0);
    ck_assert(!qexists("queue", id, "env"));
    ck_assert(!qexists("queue", id, "body"));
    ck_assert(!qexists("queue", id, "st"));
}
END_TEST

START_TEST(test_remove)
{
    char id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("a@example.org", 1);
    commit_sync(env, BODY, id);
    spool_envelope_free(env);
    ck_assert_int_eq(spool_record_deferred(id, 0, 1, 5), 0);
    ck_assert(qexists("queue", id, "st"));
    ck_assert_int_eq(spool_remove(id), 0);
    spool_reap_flush(); /* removal runs on its own thread */
    ck_assert(!qexists("queue", id, "env"));
    ck_assert(!qexists("queue", id, "body"));
    ck_assert(!qexists("queue", id, "st"));
    ck_assert_int_eq(spool_open_body(id), -1);
    ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* Records of one message in a row share one open file and one sync. */
START_TEST(test_records_share_sync)
{
    char id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("a@example.org", 100);
    commit_sync(env, BODY, id);
    spool_envelope_free(env);
    struct spool_stats before, after;
    spool_get_stats(&before);
    struct spoolfix_done d = {0};
    for (unsigned i = 0; i < 100; i++)
        ck_assert_int_eq(spool_record_delivered(id, i, spoolfix_on_done, &d), 0);
    spoolfix_run_until(base, &d.called, 100);
    ck_assert_int_eq(d.error, 0);
    spool_get_stats(&after);
    ck_assert_uint_lt(after.synced_items - before.synced_items, 100);
    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(st.removed, 1);
}
END_TEST

/* A burst of commits completes in far fewer rounds than messages. */
static double burst(const char *method, int n, uint64_t *rounds_out)
{
    ck_assert_int_eq(spool_set_sync_method(method), 0);
    struct spool_stats before, after;
    spool_get_stats(&before);
    struct spoolfix_done d = {0};
    struct spool_envelope **envs = calloc((size_t)n, sizeof(*envs));
    char id[SPOOL_ID_LEN + 1];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        envs[i] = make_env("sender@example.org", 2);
        commit_msg(envs[i], BODY, id, &d);
    }
    spoolfix_run_until(base, &d.called, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_int_eq(d.error, 0);
    spool_get_stats(&after);
    for (int i = 0; i < n; i++)
        spool_envelope_free(envs[i]);
    free(envs);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    *rounds_out = after.sync_rounds - before.sync_rounds;
    printf("spool burst (%s): %d messages in %.3f s = %.0f msgs/s, %llu sync rounds, "
           "%.2f ms per round\n", method, n, secs, n / secs, (unsigned long long)*rounds_out,
           (double)(after.sync_usec - before.sync_usec) / 1000.0 / (double)*rounds_out);
    return secs;
}

START_TEST(test_group_commit_burst)
{
    /* Real timings, printed for the choice of spool_sync_method. How many
     * rounds a live burst needs depends on how fast this thread can create
     * files compared to a sync (ext4 makes creators wait for the journal):
     * it is asserted to group only loosely here; test_round_takes_all checks
     * the grouping itself deterministically. */
    uint64_t rounds;
    burst("fsync", 200, &rounds);
    ck_assert_uint_ge(rounds, 1);
    ck_assert_uint_le(rounds, 200);
    burst("syncfs", 200, &rounds);
    ck_assert_uint_le(rounds, 200);
    burst("fsync", 2000, &rounds);
    burst("syncfs", 2000, &rounds);
    ck_assert_int_eq(spool_set_sync_method("bogus"), -1);
    spool_set_sync_method("fsync");
    /* one by one, for comparison (no grouping possible) */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 50; i++) {
        char id[SPOOL_ID_LEN + 1];
        struct spool_envelope *env = make_env("s@example.org", 2);
        commit_sync(env, BODY, id);
        spool_envelope_free(env);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("spool sequential (fsync): 50 messages one at a time: %.0f msgs/s\n", 50 / secs);
}
END_TEST

/* Group commit: a burst of 200 commits arriving while a round is busy (the
 * sync thread held, as by a slow disk) completes in ONE round with one
 * directory sync, on any filesystem. */
START_TEST(test_round_takes_all)
{
    struct spool_stats before, after;
    struct spoolfix_done d = {0};
    struct spool_envelope *env = make_env("a@example.org", 1);
    char id[SPOOL_ID_LEN + 1];
    spool_get_stats(&before);
    spool_sync_hold(1);
    for (int i = 0; i < 200; i++)
        commit_msg(env, BODY, id, &d);
    ck_assert_int_eq(spool_record_delivered(id, 0, spoolfix_on_done, &d), 0);
    spool_sync_hold(0);
    spoolfix_run_until(base, &d.called, 201);
    ck_assert_int_eq(d.error, 0);
    spool_get_stats(&after);
    ck_assert_uint_eq(after.sync_rounds - before.sync_rounds, 1);
    ck_assert_uint_eq(after.synced_items - before.synced_items, 401);
    spool_envelope_free(env);
}
END_TEST

/* Commits made while the loop is not running complete at shutdown. */
START_TEST(test_shutdown_drains)
{
    char id[SPOOL_ID_LEN + 1];
    struct spoolfix_done d = {0};
    struct spool_envelope *env = make_env("a@example.org", 1);
    commit_msg(env, BODY, id, &d);
    spool_shutdown();
    ck_assert_int_eq(d.called, 1);
    ck_assert_int_eq(d.error, 0);
    spool_envelope_free(env);
    char err[256];
    ck_assert_int_eq(spool_init(dir, base, err, sizeof(err)), 0); /* for teardown */
}
END_TEST

START_TEST(test_init_errors)
{
    char err[256];
    ck_assert_int_eq(spool_init(dir, base, err, sizeof(err)), -1); /* already */
    spool_shutdown();
    ck_assert_int_eq(spool_init("/proc/nonexistent/spool", base, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, "/proc/nonexistent/spool"));
    ck_assert_ptr_null(spool_writer_open());
    ck_assert_int_eq(spool_init(dir, base, err, sizeof(err)), 0);
}
END_TEST

/* Recovery speed: 2,000 messages x 100 recipients (under 2 s), or with
 * VIPMTA_SPOOL_BENCH=1 in the environment the full 10,000 x 100 (under 10 s;
 * creating and deleting its 20,000 files takes a while on some disks). */
static size_t rec_msgs, rec_rcpts;
static void count_env(void *arg, struct spool_envelope *env)
{
    (void)arg;
    rec_msgs++;
    rec_rcpts += env->rcpt_count;
    spool_envelope_free(env);
}

START_TEST(test_recovery_speed)
{
    const char *bench = getenv("VIPMTA_SPOOL_BENCH");
    const int full = bench && *bench && strcmp(bench, "0") != 0;
    const int nmsg = full ? 10000 : 2000, nrcpt = 100;
    char body[2048];
    memset(body, 'x', sizeof(body) - 1);
    body[sizeof(body) - 1] = '\0';
    struct spoolfix_done d = {0};
    char id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("sender@example.org", (size_t)nrcpt);
    /* durability is not what is measured here: one round at the end */
    spool_set_sync_method("syncfs");
    spool_sync_hold(1);
    for (int i = 0; i < nmsg; i++) {
        commit_msg(env, body, id, &d);
        if (i % 3 == 0)
            spool_record_deferred(id, 1, 2, 1800000000);
    }
    spool_sync_hold(0);
    spoolfix_run_until(base, &d.called, nmsg);
    spool_set_sync_method("fsync");
    spool_envelope_free(env);

    for (int crc = 1; crc >= 0; crc--) {
        spool_set_verify_crc(crc);
        rec_msgs = rec_rcpts = 0;
        struct spool_recover_stats st;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ck_assert_int_eq(spool_recover(count_env, NULL, &st), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        printf("spool recovery (CRC check %s): %zu messages, %zu recipients in %.3f s\n",
               crc ? "on" : "off", st.messages, st.recipients_pending, secs);
        ck_assert_uint_eq(st.messages, (size_t)nmsg);
        ck_assert_uint_eq(rec_rcpts, (size_t)nmsg * nrcpt);
        /* the time is printed, not asserted: the target (under 10 s for
         * 1,000,000 recipients) is measured by bench/queue_memory.sh */
    }
}
END_TEST

static Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_commit_done);
    tcase_add_test(tc, test_commit_refuses_no_recipients);
    tcase_add_test(tc, test_ids_unique_sorted);
    tcase_add_test(tc, test_crc_known_value);
    tcase_add_test(tc, test_envelope_round_trip);
    tcase_add_test(tc, test_envelope_added_headers);
    tcase_add_test(tc, test_recover_states);
    tcase_add_test(tc, test_torn_env_quarantined);
    tcase_add_test(tc, test_garbage_env_quarantined);
    tcase_add_test(tc, test_body_checks);
    tcase_add_test(tc, test_orphan_body_removed);
    tcase_add_test(tc, test_all_final_removed);
    tcase_add_test(tc, test_remove);
    tcase_add_test(tc, test_records_share_sync);
    tcase_add_test(tc, test_group_commit_burst);
    tcase_add_test(tc, test_round_takes_all);
    tcase_add_test(tc, test_shutdown_drains);
    tcase_add_test(tc, test_init_errors);
    tcase_add_test(tc, test_recovery_speed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(spool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
