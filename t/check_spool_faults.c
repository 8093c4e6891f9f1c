/* check_spool_faults.c: Check suite for the spool's durability failure branches, driven by the fault-injection shim (t/lib/faultinject.c). */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/faultinject.h"
#include "log/log.h"
#include "spool/spool.h"
#include "spool/spool_internal.h"
#include "lib/spoolfix.h"

static char dir[64];
static char logpath[128];
static struct event_base *base;

static void start_spool(void)
{
    char err[256];
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    ck_assert_msg(spool_init(dir, base, err, sizeof(err)) == 0, "spool_init: %s", err);
}

static void stop_spool(void)
{
    spool_shutdown();
    event_base_free(base);
    base = NULL;
}

static void setup(void)
{
    strcpy(dir, "/tmp/check_spool_faults.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    /* the log goes to a file the tests read (outside the spool: no rule matches it) */
    snprintf(logpath, sizeof(logpath), "%s.log", dir);
    ck_assert_int_eq(log_open_file(logpath), 0);
    ck_assert_int_eq(faultinject_set(NULL), 0);
    spool_set_sync_method("fsync");
    spool_set_verify_crc(1);
    /* bodies to their files as they arrive (as large ones are); the
     * memory_* tests turn the memory bodies on */
    spool_set_memory(0);
    start_spool();
}

static void teardown(void)
{
    faultinject_set(NULL);
    stop_spool();
    log_close();
    spoolfix_rm_rf(dir);
    unlink(logpath);
}

/* ---- helpers ---- */

static struct spool_envelope *make_env(const char *sender, size_t nrcpt, int is_dsn)
{
    struct spool_envelope *env = calloc(1, sizeof(*env));
    env->received = 1700000000;
    env->client_addr = strdup("127.0.0.1");
    env->helo = strdup("client.example");
    env->sender = strdup(sender);
    env->binding = strdup("default");
    env->is_dsn = is_dsn;
    env->rcpts = calloc(nrcpt, sizeof(*env->rcpts));
    env->rcpt_count = nrcpt;
    for (size_t i = 0; i < nrcpt; i++) {
        char a[64];
        snprintf(a, sizeof(a), "user%zu@dest.example", i);
        env->rcpts[i].address = strdup(a);
    }
    return env;
}

static const char *BODY = "Received: from client.example\r\nSubject: faults\r\n\r\nHello.\r\n";

/* Writes a message and commits it; the commit's return value; `d` hears the sync. */
static int commit_msg(const char *sender, size_t nrcpt, int is_dsn, char id[SPOOL_ID_LEN + 1],
                      struct spoolfix_done *d)
{
    struct spool_envelope *env = make_env(sender, nrcpt, is_dsn);
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    memcpy(id, spool_writer_id(w), SPOOL_ID_LEN + 1);
    ck_assert_int_eq(spool_writer_write(w, BODY, strlen(BODY)), 0);
    int rc = spool_writer_commit(w, env, spoolfix_on_done, d);
    int saved = errno;
    spool_envelope_free(env);
    errno = saved;
    return rc;
}

/* Commits a message and waits for it to be durable (no fault expected). */
static void commit_ok(const char *sender, size_t nrcpt, int is_dsn, char id[SPOOL_ID_LEN + 1])
{
    struct spoolfix_done d = {0};
    ck_assert_int_eq(commit_msg(sender, nrcpt, is_dsn, id, &d), 0);
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(d.error, 0);
}

static int qexists(const char *sub, const char *id, const char *ext)
{
    return spoolfix_exists(dir, sub, id, ext);
}

/* Number of files in queue/. */
static int queue_files(void)
{
    return spoolfix_count(dir, "queue", NULL);
}

/* The spool file ID.EXT ("" when there is none). */
static char *slurp(const char *id, const char *ext)
{
    char p[256];
    spoolfix_path(p, sizeof(p), dir, "queue", id, ext);
    char *text = spoolfix_read(p, NULL);
    return text ? text : strdup("");
}

static void append(const char *id, const char *ext, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/queue/%s.%s", dir, id, ext);
    FILE *f = fopen(p, "ab");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Non-zero when the log has a line containing `text`. */
static int logged(const char *text)
{
    return spoolfix_log_has(logpath, text);
}

static void set_faults(const char *rules)
{
    ck_assert_int_eq(faultinject_set(rules), 0);
}

/* A restart: the spool stops and starts again, then recovers into c. */
static void restart(struct spoolfix_collected *c, struct spool_recover_stats *st)
{
    stop_spool();
    start_spool();
    ck_assert_int_eq(spool_recover(spoolfix_collect, c, st), 0);
}

/* ---- the shim itself ---- */

START_TEST(test_shim_counts)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/probe-file", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    ck_assert_int_ge(fd, 0);
    /* the 2nd and 3rd matching calls fail, with errno given by number */
    set_faults("fsync,fdatasync path=*/probe-* nth=2 count=2 errno=28");
    ck_assert_int_eq(fsync(fd), 0);
    errno = 0;
    ck_assert_int_eq(fdatasync(fd), -1);
    ck_assert_int_eq(errno, ENOSPC);
    ck_assert_int_eq(fsync(fd), -1);
    ck_assert_int_eq(fsync(fd), 0);
    ck_assert_uint_eq(faultinject_fired(), 2);
    ck_assert_uint_eq(faultinject_matched("fsync"), 3);
    ck_assert_uint_eq(faultinject_matched("fdatasync"), 1);
    /* another path does not match */
    set_faults("write path=*/elsewhere errno=EIO count=0");
    ck_assert_int_eq(write(fd, "x", 1), 1);
    ck_assert_uint_eq(faultinject_fired(), 0);
    /* count=0: every call from nth on */
    set_faults("write path=*/probe-file count=0 errno=EDQUOT");
    for (int i = 0; i < 3; i++) {
        errno = 0;
        ck_assert_int_eq(write(fd, "x", 1), -1);
        ck_assert_int_eq(errno, EDQUOT);
    }
    close(fd);
    /* *at calls match on the directory's path joined with the name */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    set_faults("unlinkat path=*/probe-file errno=EBUSY");
    ck_assert_int_eq(unlinkat(dfd, "probe-file", 0), -1);
    ck_assert_int_eq(errno, EBUSY);
    ck_assert_int_eq(unlinkat(dfd, "probe-file", 0), 0);
    close(dfd);
    /* rules that do not parse are refused (and none is in force) */
    ck_assert_int_eq(faultinject_set("nosuchcall errno=EIO"), -1);
    ck_assert_int_eq(faultinject_set("write errno=ENOTANERRNO"), -1);
    ck_assert_int_eq(faultinject_set("write nth=0"), -1);
    ck_assert_int_eq(faultinject_set("write bogus"), -1);
    ck_assert_int_eq(write(STDERR_FILENO, "", 0), 0);
}
END_TEST

/* ---- a commit that fails: nothing is acknowledged, nothing is left ---- */

START_TEST(test_body_write_fails)
{
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    char id[SPOOL_ID_LEN + 1];
    strcpy(id, spool_writer_id(w));
    set_faults("write path=*/queue/*.body errno=ENOSPC");
    errno = 0;
    ck_assert_int_eq(spool_writer_write(w, BODY, strlen(BODY)), -1);
    ck_assert_int_eq(errno, ENOSPC); /* the server answers 451 4.3.0 */
    ck_assert_uint_eq(faultinject_fired(), 1);
    spool_writer_abort(w);
    ck_assert_int_eq(queue_files(), 0);
}
END_TEST

START_TEST(test_body_create_fails)
{
    set_faults("openat path=*/queue/*.body errno=EDQUOT");
    errno = 0;
    ck_assert_ptr_null(spool_writer_open());
    ck_assert_int_eq(errno, EDQUOT);
    ck_assert_int_eq(queue_files(), 0);
}
END_TEST

/* The envelope cannot be created or written: commit returns -1 with the
 * errno, `done` is never called, both files are gone. */
START_TEST(test_env_write_fails)
{
    /* the sync thread writes the envelope: the failure comes with the commit's completion */
    static const char *const rules[] = {
        "openat path=*/queue/*.env errno=EDQUOT",
        "write path=*/queue/*.env errno=ENOSPC",
    };
    static const int errs[] = {EDQUOT, ENOSPC};
    for (size_t i = 0; i < 2; i++) {
        char id[SPOOL_ID_LEN + 1];
        struct spoolfix_done d = {0};
        set_faults(rules[i]);
        ck_assert_int_eq(commit_msg("a@example.org", 2, 0, id, &d), 0);
        spoolfix_run_until(base, &d.called, 1);
        ck_assert_int_eq(d.error, errs[i]);
        ck_assert_uint_eq(faultinject_fired(), 1);
        ck_assert(!qexists("queue", id, "env"));
        ck_assert(!qexists("queue", id, "body"));
    }
}
END_TEST

START_TEST(test_commit_sync_fails)
{
    static const struct {
        const char *method, *rule;
        int err;
    } cases[] = {
        {"fsync", "fdatasync path=*/queue/*.body errno=EIO", EIO},
        {"fsync", "fdatasync path=*/queue/*.env errno=EIO", EIO},
        {"fsync", "fsync path=*/queue errno=EIO", EIO},
        /* the sync thread reopens a body the loop wrote by name (the 1st openat created it) */
        {"fsync", "openat path=*/queue/*.body nth=2 errno=EMFILE", EMFILE},
        {"syncfs", "syncfs errno=EIO", EIO},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char id[SPOOL_ID_LEN + 1];
        struct spoolfix_done d = {0};
        spool_set_sync_method(cases[i].method);
        set_faults(cases[i].rule);
        ck_assert_int_eq(commit_msg("a@example.org", 1, 0, id, &d), 0);
        spoolfix_run_until(base, &d.called, 1);
        ck_assert_msg(d.error == cases[i].err, "%s: error %d", cases[i].rule, d.error);
        ck_assert_uint_eq(faultinject_fired(), 1);
        ck_assert(!qexists("queue", id, "env"));
        ck_assert(!qexists("queue", id, "body"));
        set_faults(NULL);
        commit_ok("a@example.org", 1, 0, id);
        ck_assert(qexists("queue", id, "env"));
    }
    ck_assert(logged("cannot make the message durable"));
    spool_set_sync_method("fsync");
}
END_TEST

/* One directory fsync serves the whole round: when it fails, every commit
 * and record of the round hears it. */
START_TEST(test_round_error_reaches_all)
{
    char id1[SPOOL_ID_LEN + 1], id2[SPOOL_ID_LEN + 1], old[SPOOL_ID_LEN + 1];
    struct spoolfix_done d1 = {0}, d2 = {0}, d3 = {0};
    commit_ok("a@example.org", 2, 0, old);
    spool_sync_hold(1);
    ck_assert_int_eq(commit_msg("a@example.org", 1, 0, id1, &d1), 0);
    ck_assert_int_eq(commit_msg("a@example.org", 1, 0, id2, &d2), 0);
    ck_assert_int_eq(spool_record_bounced(old, 0, spoolfix_on_done, &d3), 0);
    set_faults("fsync path=*/queue errno=EIO");
    spool_sync_hold(0);
    spoolfix_run_until(base, &d1.called, 1);
    spoolfix_run_until(base, &d2.called, 1);
    spoolfix_run_until(base, &d3.called, 1);
    ck_assert_int_eq(d1.error, EIO);
    ck_assert_int_eq(d2.error, EIO);
    ck_assert_int_eq(d3.error, EIO);
    ck_assert(!qexists("queue", id1, "env"));
    ck_assert(!qexists("queue", id2, "env"));
    ck_assert(qexists("queue", old, "env")); /* a record's failure removes nothing */
}
END_TEST

/* The writeback hint (sync_file_range) may fail: the fdatasync that follows
 * is what counts, so the commit still succeeds. */
START_TEST(test_writeback_hint_fails)
{
    char id[SPOOL_ID_LEN + 1];
    set_faults("sync_file_range count=0 errno=EIO");
    commit_ok("a@example.org", 1, 0, id);
    ck_assert_uint_ge(faultinject_fired(), 2);
    ck_assert(qexists("queue", id, "env"));
}
END_TEST

/* ---- outcome records ---- */

START_TEST(test_record_append_fails)
{
    char id[SPOOL_ID_LEN + 1];
    commit_ok("a@example.org", 3, 0, id);
    static const char *const rules[] = {
        "openat path=*/queue/*.st errno=ENOSPC",
        "write path=*/queue/*.st errno=ENOSPC",
    };
    for (size_t i = 0; i < 2; i++) {
        struct spoolfix_done d = {0};
        set_faults(rules[i]);
        errno = 0;
        ck_assert_int_eq(spool_record_delivered(id, 0, spoolfix_on_done, &d), -1);
        ck_assert_int_eq(errno, ENOSPC);
        set_faults(rules[i]);
        ck_assert_int_eq(spool_record_bounced(id, 1, spoolfix_on_done, &d), -1);
        set_faults(rules[i]);
        ck_assert_int_eq(spool_record_deferred(id, 2, 1, 1800000000), -1);
        set_faults(rules[i]);
        ck_assert_int_eq(spool_record_bouncing(id, 1, "0000000000000001", spoolfix_on_done, &d), -1);
        for (int k = 0; k < 5; k++)
            event_base_loop(base, EVLOOP_NONBLOCK);
        ck_assert_int_eq(d.called, 0); /* nothing was queued for a sync */
    }
    set_faults(NULL);
    char *st = slurp(id, "st");
    ck_assert_str_eq(st, ""); /* nothing was recorded */
    free(st);
    /* bad arguments */
    ck_assert_int_eq(spool_record_bouncing(id, 0, "not-an-id", NULL, NULL), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(spool_record_delivered("nothex", 0, NULL, NULL), -1);
}
END_TEST

START_TEST(test_record_sync_fails)
{
    char id[SPOOL_ID_LEN + 1];
    commit_ok("a@example.org", 3, 0, id);
    struct spoolfix_done d = {0};
    set_faults("fdatasync path=*/queue/*.st errno=EIO");
    ck_assert_int_eq(spool_record_bounced(id, 0, spoolfix_on_done, &d), 0);
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(d.error, EIO);
    /* the reopen for the sync fails */
    set_faults("openat path=*/queue/*.st nth=2 errno=EMFILE");
    d.called = 0;
    ck_assert_int_eq(spool_record_bouncing(id, 1, "0000000000000001", spoolfix_on_done, &d), 0);
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(d.error, EMFILE);
    set_faults(NULL);
    d.called = 0;
    ck_assert_int_eq(spool_record_delivered(id, 2, spoolfix_on_done, &d), 0);
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(d.error, 0);
}
END_TEST

/* ---- removal ---- */

/* ID.env cannot be unlinked: the message stays whole (ID.body and ID.st
 * too) and comes back at the next start; a failed fsync after removals is
 * only a warning. */
START_TEST(test_remove_fails)
{
    char id[SPOOL_ID_LEN + 1], gone[SPOOL_ID_LEN + 1];
    commit_ok("a@example.org", 2, 0, id);
    commit_ok("a@example.org", 1, 0, gone);
    struct spoolfix_done d = {0};
    ck_assert_int_eq(spool_record_delivered(id, 0, spoolfix_on_done, &d), 0);
    spoolfix_run_until(base, &d.called, 1);
    set_faults("unlinkat path=*/queue/*.env errno=EIO");
    ck_assert_int_eq(spool_remove(id), 0);
    spool_reap_flush();
    ck_assert_uint_eq(faultinject_fired(), 1);
    ck_assert(qexists("queue", id, "env"));
    ck_assert(qexists("queue", id, "body"));
    ck_assert(qexists("queue", id, "st"));
    ck_assert(logged("cannot remove"));
    set_faults("fsync path=*/queue errno=EIO");
    ck_assert_int_eq(spool_remove(gone), 0);
    spool_reap_flush();
    ck_assert(!qexists("queue", gone, "env"));
    ck_assert(!qexists("queue", gone, "body"));
    ck_assert(logged("fsync after removals"));
    set_faults("unlinkat path=*/queue/*.body errno=EIO");
    char third[SPOOL_ID_LEN + 1];
    commit_ok("a@example.org", 1, 0, third);
    ck_assert_int_eq(spool_remove(third), 0);
    spool_reap_flush();
    ck_assert(!qexists("queue", third, "env"));
    ck_assert(qexists("queue", third, "body")); /* an orphan: deleted at the next start */
    set_faults(NULL);

    /* the next start: the message that could not be removed is back, with
     * its records; the orphan body is deleted */
    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    restart(&c, &st);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.env[0]->id, id);
    ck_assert_int_eq(c.env[0]->rcpts[0].state, SPOOL_RCPT_DELIVERED);
    ck_assert_int_eq(c.env[0]->rcpts[1].state, SPOOL_RCPT_PENDING);
    ck_assert(!qexists("queue", third, "body"));
    spoolfix_collected_free(&c);
}
END_TEST

/* Removals handed over one by one within the gathering time are removed
 * in one batch: one fsync of queue/ for all of them, not one each; the stop
 * ends a gathering wait and removes what was handed over. */
START_TEST(test_remove_gathers)
{
    enum { N = 10 };
    char ids[N][SPOOL_ID_LEN + 1];
    for (int i = 0; i < N; i++)
        commit_ok("a@example.org", 1, 0, ids[i]);
    set_faults("fsync path=*/queue nth=1000000"); /* counts, never fails */
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(spool_remove(ids[i]), 0);
        spool_reap_handoff(); /* as at the end of one loop iteration each */
        usleep(500);
    }
    time_t start = time(NULL);
    while (qexists("queue", ids[N - 1], "body")) {
        ck_assert_msg(time(NULL) - start < 10, "removals never ran");
        usleep(1000);
    }
    for (int i = 0; i < N; i++)
        ck_assert(!qexists("queue", ids[i], "env"));
    ck_assert_uint_le(faultinject_matched("fsync"), 3);

    char last[SPOOL_ID_LEN + 1];
    commit_ok("a@example.org", 1, 0, last);
    ck_assert_int_eq(spool_remove(last), 0);
    spool_reap_handoff();
    stop_spool();
    ck_assert(!qexists("queue", last, "env"));
    ck_assert(!qexists("queue", last, "body"));
    start_spool();
}
END_TEST

/* ---- recovery ---- */

/* Reading a message fails at startup: it is set aside in quarantine/ (never
 * deleted); when even that fails it stays in queue/ for the next start. */
START_TEST(test_recover_read_fails)
{
    char id[SPOOL_ID_LEN + 1], id2[SPOOL_ID_LEN + 1], id3[SPOOL_ID_LEN + 1];
    char id4[SPOOL_ID_LEN + 1], orphan[SPOOL_ID_LEN + 1];
    commit_ok("a@example.org", 1, 0, id);
    commit_ok("a@example.org", 1, 0, id2);
    commit_ok("a@example.org", 1, 0, id3);
    commit_ok("a@example.org", 1, 0, id4);
    append(id3, "st", "T 0 1 17"); /* a torn record: cut off at recovery */
    /* a body never committed (no envelope): deleted at recovery */
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    strcpy(orphan, spool_writer_id(w));
    ck_assert_int_eq(spool_writer_write(w, BODY, strlen(BODY)), 0);
    spool_writer_close_body(w);
    free(w); /* left behind, as by a crash */
    stop_spool();
    start_spool();
    char rules[1024];
    /* id's envelope cannot be read; id2's body cannot be checked; id3's torn
     * ID.st cannot be cut; id4's body cannot be read for its CRC; moving id2
     * aside fails; the orphan cannot be deleted */
    snprintf(rules, sizeof(rules), "read path=*/queue/%s.env errno=EIO; "
             "fstat path=*/queue/%s.body errno=EIO; ftruncate path=*/queue/%s.st errno=EIO; "
             "read path=*/queue/%s.body errno=EIO; "
             "renameat path=*/queue/%s.* errno=EXDEV count=0; "
             "unlinkat path=*/queue/%s.body errno=EIO", id, id2, id3, id4, id2, orphan);
    set_faults(rules);
    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(c.n, 0);
    ck_assert_uint_eq(st.quarantined, 4);
    ck_assert(qexists("quarantine", id4, "env"));
    ck_assert(qexists("queue", orphan, "body")); /* deleted at the next start */
    ck_assert(logged("cannot delete"));
    ck_assert(qexists("quarantine", id, "env"));
    ck_assert(qexists("quarantine", id, "body"));
    ck_assert(qexists("queue", id2, "env")); /* could not be moved: still there */
    ck_assert(qexists("quarantine", id3, "st"));
    ck_assert(logged("cannot move to quarantine"));
    set_faults(NULL);
    /* the next start takes id2 normally, and deletes the orphan */
    stop_spool();
    start_spool();
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_uint_eq(c.n, 1);
    ck_assert_str_eq(c.env[0]->id, id2);
    ck_assert(!qexists("queue", orphan, "body"));
    spoolfix_collected_free(&c);
}
END_TEST

/* Bounces a stop interrupted ("F IDX DSNID" without "B IDX"): bounced iff
 * the DSN is complete, with a B record appended; else pending. */
START_TEST(test_recover_bounce_in_progress)
{
    char orig[SPOOL_ID_LEN + 1], dsn_ok[SPOOL_ID_LEN + 1], dsn_torn[SPOOL_ID_LEN + 1];
    char dsn_nobody[SPOOL_ID_LEN + 1], line[128];
    commit_ok("alice@example.org", 6, 0, orig);
    commit_ok("", 1, 1, dsn_ok);
    commit_ok("", 1, 1, dsn_torn);
    commit_ok("", 1, 1, dsn_nobody);
    /* dsn_torn: its envelope cut short (the crash came during its commit) */
    char p[256];
    snprintf(p, sizeof(p), "%s/queue/%s.env", dir, dsn_torn);
    ck_assert_int_eq(truncate(p, 40), 0);
    /* dsn_nobody: its body lost (the crash came before the body was durable) */
    snprintf(p, sizeof(p), "%s/queue/%s.body", dir, dsn_nobody);
    ck_assert_int_eq(truncate(p, 3), 0);
    /* 0: F, DSN complete -> bounced; 1: F, no such DSN -> pending; 2: F, DSN
     * torn -> pending; 3: F then B -> bounced; 4: F, DSN complete, then a
     * deferral (an older bounce that did not happen) -> pending; 5: F of a
     * DSN whose body is wrong -> pending */
    snprintf(line, sizeof(line), "F 0 %s\n", dsn_ok);
    append(orig, "st", line);
    append(orig, "st", "F 1 00000000000000ff\n");
    snprintf(line, sizeof(line), "F 2 %s\n", dsn_torn);
    append(orig, "st", line);
    snprintf(line, sizeof(line), "F 3 00000000000000fe\nB 3 1700000000\n");
    append(orig, "st", line);
    snprintf(line, sizeof(line), "F 4 %s\nT 4 1 1700000000\n", dsn_ok);
    append(orig, "st", line);
    snprintf(line, sizeof(line), "F 5 %s\nF 9 %s\nF x y\n", dsn_nobody, dsn_ok); /* and garbage */
    append(orig, "st", line);

    /* a read-only look (vipmtactl) decides the same, and writes nothing */
    char err[256];
    struct spool_envelope *ro = spool_read_envelope(orig, err, sizeof(err));
    ck_assert_msg(ro != NULL, "%s", err);
    ck_assert_int_eq(ro->rcpts[0].state, SPOOL_RCPT_BOUNCED);
    ck_assert_int_eq(ro->rcpts[1].state, SPOOL_RCPT_PENDING);
    spool_envelope_free(ro);
    char *st_before = slurp(orig, "st");

    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    restart(&c, &st);
    struct spool_envelope *o = spoolfix_collected_find(&c, orig);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->rcpts[0].state, SPOOL_RCPT_BOUNCED);
    ck_assert_int_eq(o->rcpts[1].state, SPOOL_RCPT_PENDING);
    ck_assert_int_eq(o->rcpts[2].state, SPOOL_RCPT_PENDING);
    ck_assert_int_eq(o->rcpts[3].state, SPOOL_RCPT_BOUNCED);
    ck_assert_int_eq(o->rcpts[4].state, SPOOL_RCPT_PENDING);
    ck_assert_int_eq(o->rcpts[5].state, SPOOL_RCPT_PENDING);
    ck_assert_uint_eq(st.recipients_pending, 4 + 1); /* orig's 4 and dsn_ok's */
    ck_assert_ptr_nonnull(spoolfix_collected_find(&c, dsn_ok)); /* the DSN is queued once */
    ck_assert_ptr_null(spoolfix_collected_find(&c, dsn_torn)); /* quarantined */
    ck_assert_ptr_null(spoolfix_collected_find(&c, dsn_nobody));
    spoolfix_collected_free(&c);
    /* the B record for recipient 0 was appended (once) */
    char *st_after = slurp(orig, "st");
    ck_assert_uint_eq(strlen(st_after), strlen(st_before) + strlen("B 0 1700000000\n"));
    ck_assert_ptr_nonnull(strstr(st_after + strlen(st_before), "B 0 "));
    free(st_before);
    free(st_after);
    ck_assert(logged("was spooled before the stop: bounced"));
    ck_assert(logged("was not spooled before the stop"));

    /* a second start finds it recorded: nothing appended again */
    st_before = slurp(orig, "st");
    restart(&c, &st);
    st_after = slurp(orig, "st");
    ck_assert_str_eq(st_after, st_before);
    free(st_before);
    free(st_after);
    spoolfix_collected_free(&c);
}
END_TEST

/* The B record cannot be written at recovery: the recipient counts as
 * bounced all the same (its DSN exists), and the error is logged. */
START_TEST(test_recover_bounce_record_fails)
{
    char orig[SPOOL_ID_LEN + 1], dsn[SPOOL_ID_LEN + 1], line[64];
    commit_ok("alice@example.org", 2, 0, orig);
    commit_ok("", 1, 1, dsn);
    snprintf(line, sizeof(line), "F 1 %s\n", dsn);
    append(orig, "st", line);
    stop_spool();
    start_spool();
    char rule[128];
    snprintf(rule, sizeof(rule), "write path=*/queue/%s.st errno=ENOSPC", orig);
    set_faults(rule);
    struct spoolfix_collected c = {0};
    struct spool_recover_stats st;
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    struct spool_envelope *o = spoolfix_collected_find(&c, orig);
    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->rcpts[1].state, SPOOL_RCPT_BOUNCED);
    ck_assert_int_eq(o->rcpts[0].state, SPOOL_RCPT_PENDING);
    ck_assert(logged("cannot record its bounce"));
    spoolfix_collected_free(&c);
    /* its sync fails */
    stop_spool();
    start_spool();
    snprintf(rule, sizeof(rule), "fdatasync path=*/queue/%s.st errno=EIO", orig);
    set_faults(rule);
    ck_assert_int_eq(spool_recover(spoolfix_collect, &c, &st), 0);
    ck_assert_int_eq(spoolfix_collected_find(&c, orig)->rcpts[1].state, SPOOL_RCPT_BOUNCED);
    ck_assert(logged("cannot make 1 bounce records durable"));
    spoolfix_collected_free(&c);
}
END_TEST

/* A writer whose body is closed early (a DSN waiting for its F record)
 * still commits; writing after that fails. */
static char *read_file(const char *sub, const char *id, const char *ext, size_t *len)
{
    return spoolfix_read_file(dir, sub, id, ext, len);
}

/* Bodies in memory: the sync thread creates and writes both files at the
 * commit; each step failing is a 451 (the completion's error) and leaves
 * nothing, neither files nor memory held. */
START_TEST(test_memory_commit_fails)
{
    static const struct {
        const char *rule;
        int err;
    } cases[] = {
        {"openat path=*/queue/*.body errno=EDQUOT", EDQUOT},
        {"write path=*/queue/*.body errno=ENOSPC", ENOSPC},
        {"openat path=*/queue/*.env errno=EMFILE", EMFILE},
        {"write path=*/queue/*.env errno=ENOSPC", ENOSPC},
        {"fdatasync path=*/queue/*.body errno=EIO", EIO},
        {"fdatasync path=*/queue/*.env errno=EIO", EIO},
        {"fsync path=*/queue errno=EIO", EIO},
    };
    spool_set_memory(SPOOL_MEMORY_DEFAULT);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char id[SPOOL_ID_LEN + 1];
        struct spoolfix_done d = {0};
        struct spool_memory_stats ms;
        set_faults(cases[i].rule);
        ck_assert_int_eq(commit_msg("a@example.org", 1, 0, id, &d), 0);
        spoolfix_run_until(base, &d.called, 1);
        ck_assert_msg(d.error == cases[i].err, "%s: error %d", cases[i].rule, d.error);
        ck_assert_uint_eq(faultinject_fired(), 1);
        ck_assert(!qexists("queue", id, "env"));
        ck_assert(!qexists("queue", id, "body"));
        spool_get_memory_stats(&ms);
        ck_assert_uint_eq(ms.bytes, 0);
        ck_assert_uint_eq(ms.bodies, 0);
        set_faults(NULL);
        commit_ok("a@example.org", 1, 0, id);
        ck_assert(qexists("queue", id, "env"));
        spool_remove(id);
        spool_reap_flush();
    }
    ck_assert(logged("cannot make the message durable"));
}
END_TEST

/* A body kept in memory is read from there, and its memory is given back
 * when the message is removed; one over the bound goes to its file as it
 * arrives and is read from the file; the sum of bodies held stays within
 * the bound. */
START_TEST(test_memory_bodies)
{
    struct spool_memory_stats ms;
    char id[SPOOL_ID_LEN + 1];
    char buf[256];
    spool_set_memory(64 * 1024); /* at most 1 KiB per body */
    commit_ok("a@example.org", 1, 0, id);
    size_t len;
    char *disk = read_file("queue", id, "body", &len);
    ck_assert_uint_eq(len, strlen(BODY));
    ck_assert(memcmp(disk, BODY, len) == 0);
    free(disk);
    spool_get_memory_stats(&ms);
    ck_assert_uint_eq(ms.bodies, 1);
    ck_assert_uint_eq(ms.bytes, strlen(BODY));
    struct spool_body *b = spool_body_open(id);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(spool_body_read(b, buf, sizeof(buf)), (ssize_t)strlen(BODY));
    ck_assert(memcmp(buf, BODY, strlen(BODY)) == 0);
    ck_assert_int_eq(spool_body_read(b, buf, sizeof(buf)), 0);
    spool_remove(id); /* a reader still holding it keeps it readable */
    spool_body_close(b);
    spool_reap_flush();
    spool_get_memory_stats(&ms);
    ck_assert_uint_eq(ms.bodies, 0);
    ck_assert_uint_eq(ms.bytes, 0);
    ck_assert_uint_eq(ms.reads_memory, 1);

    /* over 1 KiB: to the file while DATA arrives, read back from it */
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    memcpy(id, spool_writer_id(w), sizeof(id));
    char big[700];
    memset(big, 'x', sizeof(big));
    ck_assert_int_eq(spool_writer_write(w, big, sizeof(big)), 0);
    ck_assert(!qexists("queue", id, "body"));
    ck_assert_int_eq(spool_writer_write(w, big, sizeof(big)), 0);
    ck_assert(qexists("queue", id, "body"));
    struct spool_envelope *env = make_env("a@example.org", 1, 0);
    struct spoolfix_done d = {0};
    ck_assert_int_eq(spool_writer_commit(w, env, spoolfix_on_done, &d), 0);
    spool_envelope_free(env);
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(d.error, 0);
    b = spool_body_open(id);
    ck_assert_ptr_nonnull(b);
    size_t total = 0;
    ssize_t n;
    while ((n = spool_body_read(b, buf, sizeof(buf))) > 0)
        total += (size_t)n;
    ck_assert_uint_eq(total, 2 * sizeof(big));
    spool_body_close(b);
    spool_get_memory_stats(&ms);
    ck_assert_uint_eq(ms.spilled, 1);
    ck_assert_uint_eq(ms.reads_file, 1);
    ck_assert_uint_eq(ms.bytes, 0);

    /* the bound: bodies of 900 bytes, 64 KiB in all, so the 73rd goes to its file */
    char ids[80][SPOOL_ID_LEN + 1];
    for (int i = 0; i < 80; i++) {
        w = spool_writer_open();
        memcpy(ids[i], spool_writer_id(w), sizeof(ids[i]));
        ck_assert_int_eq(spool_writer_write(w, big, 600), 0);
        ck_assert_int_eq(spool_writer_write(w, big, 300), 0);
        env = make_env("a@example.org", 1, 0);
        memset(&d, 0, sizeof(d));
        ck_assert_int_eq(spool_writer_commit(w, env, spoolfix_on_done, &d), 0);
        spool_envelope_free(env);
        spoolfix_run_until(base, &d.called, 1);
        ck_assert_int_eq(d.error, 0);
    }
    spool_get_memory_stats(&ms);
    ck_assert_uint_eq(ms.bodies, 64 * 1024 / 900);
    ck_assert_uint_le(ms.bytes, 64 * 1024);
    ck_assert_uint_eq(ms.spilled, 1 + 80 - 64 * 1024 / 900);
    for (int i = 0; i < 80; i++)
        spool_remove(ids[i]);
    spool_reap_flush();
    spool_get_memory_stats(&ms);
    ck_assert_uint_eq(ms.bytes, 0);

    /* a body closed before its commit (a DSN waiting for its F record) goes
     * to its file then, and holds no memory while it waits */
    w = spool_writer_open();
    memcpy(id, spool_writer_id(w), sizeof(id));
    ck_assert_int_eq(spool_writer_write(w, BODY, strlen(BODY)), 0);
    ck_assert(!qexists("queue", id, "body"));
    ck_assert_int_eq(spool_writer_close_body(w), 0);
    ck_assert(qexists("queue", id, "body"));
    spool_get_memory_stats(&ms);
    ck_assert_uint_eq(ms.bytes, 0);
    env = make_env("a@example.org", 1, 0);
    memset(&d, 0, sizeof(d));
    ck_assert_int_eq(spool_writer_commit(w, env, spoolfix_on_done, &d), 0);
    spool_envelope_free(env);
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(d.error, 0);
    ck_assert(qexists("queue", id, "env"));
}
END_TEST

START_TEST(test_writer_close_body)
{
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(spool_writer_write(w, BODY, strlen(BODY)), 0);
    ck_assert_int_eq(spool_writer_close_body(w), 0);
    ck_assert_int_eq(spool_writer_close_body(w), 0);
    ck_assert_int_eq(spool_writer_write(w, "x", 1), -1);
    char id[SPOOL_ID_LEN + 1];
    strcpy(id, spool_writer_id(w));
    struct spool_envelope *env = make_env("a@example.org", 1, 0);
    struct spoolfix_done d = {0};
    ck_assert_int_eq(spool_writer_commit(w, env, spoolfix_on_done, &d), 0);
    spoolfix_run_until(base, &d.called, 1);
    ck_assert_int_eq(d.error, 0);
    ck_assert_uint_eq(env->body_size, strlen(BODY));
    spool_envelope_free(env);
    ck_assert(qexists("queue", id, "env"));
}
END_TEST

/* The spool cannot be set up: spool_init fails with a message naming the
 * directory and the reason (the daemon does not start). */
START_TEST(test_init_fails)
{
    static const struct {
        const char *rule, *want;
    } cases[] = {
        {"mkdir path=*/queue errno=EACCES", "cannot create"},
        {"open path=*/queue errno=EACCES", "cannot open"},
        {"openat path=*/.probe errno=EROFS", "is not writable"},
        {"open path=*/check_spool_faults.?????? errno=EMFILE", "cannot open it"},
    };
    stop_spool();
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/queue", dir);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "";
        spoolfix_rm_rf(sub);
        base = event_base_new();
        set_faults(cases[i].rule);
        ck_assert_int_eq(spool_init(dir, base, err, sizeof(err)), -1);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "%s: %s", cases[i].rule, err);
        set_faults(NULL);
        event_base_free(base);
    }
    start_spool();
}
END_TEST

static Suite *spool_faults_suite(void)
{
    Suite *s = suite_create("spool_faults");
    TCase *tc = tcase_create("faults");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_shim_counts);
    tcase_add_test(tc, test_body_write_fails);
    tcase_add_test(tc, test_body_create_fails);
    tcase_add_test(tc, test_env_write_fails);
    tcase_add_test(tc, test_commit_sync_fails);
    tcase_add_test(tc, test_round_error_reaches_all);
    tcase_add_test(tc, test_writeback_hint_fails);
    tcase_add_test(tc, test_record_append_fails);
    tcase_add_test(tc, test_record_sync_fails);
    tcase_add_test(tc, test_remove_fails);
    tcase_add_test(tc, test_recover_read_fails);
    tcase_add_test(tc, test_recover_bounce_in_progress);
    tcase_add_test(tc, test_recover_bounce_record_fails);
    tcase_add_test(tc, test_remove_gathers);
    tcase_add_test(tc, test_memory_commit_fails);
    tcase_add_test(tc, test_memory_bodies);
    tcase_add_test(tc, test_writer_close_body);
    tcase_add_test(tc, test_init_fails);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(spool_faults_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
