/* check_queue_faults.c: Check suite for bounces under faults: the DSN is durable before the recipient is final, a failed bounce is retried, recovery loses no DSN. */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "binding/binding_table.h"
#include "config/config_current.h"
#include "lib/faultinject.h"
#include "log/log.h"
#include "queue/queue.h"
#include "queue/queue_domain.h"
#include "spool/spool.h"
#include "spool/spool_internal.h"
#include "lib/spoolfix.h"

static char dir[64];
static char logpath[128];
static struct event_base *base;

/* ---- a hand-built config: a 1 s retry (so a failed bounce is tried again after 1 s) ---- */

static unsigned schedule[] = {1, 60};
static struct config_binding bindings[] = {{.name = "b1", .address = "127.0.0.1"}};
static struct config_domain domains[1];
static struct vipmta_config cfg;

static void config_setup(void)
{
    memset(&cfg, 0, sizeof(cfg));
    memset(domains, 0, sizeof(domains));
    domains[0].name = "*";
    domains[0].limits.max_connections_per_binding = 32;
    domains[0].limits.messages_per_connection = 100;
    domains[0].limits.retry_schedule = schedule;
    domains[0].limits.retry_count = 2;
    domains[0].limits.max_queue_lifetime = 5 * 86400;
    cfg.hostname = "mx.test.example";
    cfg.bindings = bindings;
    cfg.binding_count = 1;
    cfg.domains = domains;
    cfg.domain_count = 1;
    cfg.refs = 1; /* the test's own reference: nothing frees the static cfg */
}

static void on_ready(domain_record *dr, ec_binding_slot slot, void *arg)
{
    (void)dr;
    (void)slot;
    (void)arg;
}

static void start_all(void)
{
    char err[256];
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    queue_domain_registry_init();
    /* the DSN's body goes to its file at step 1 (its fault rules name it) */
    spool_set_memory(0);
    ck_assert_msg(spool_init(dir, base, err, sizeof(err)) == 0, "spool_init: %s", err);
    ck_assert_int_eq(queue_init(base, on_ready, NULL), 0);
}

/* As the daemon stops: the spool's last completions first, then the queue. */
static void stop_all(void)
{
    spool_shutdown();
    queue_shutdown();
    queue_domain_registry_free();
    event_base_free(base);
    base = NULL;
}

static void setup(void)
{
    struct config_errors errs = {0};
    strcpy(dir, "/tmp/check_queue_faults.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(logpath, sizeof(logpath), "%s.log", dir);
    ck_assert_int_eq(log_open_file(logpath), 0);
    ck_assert_int_eq(faultinject_set(NULL), 0);
    config_setup();
    ck_assert_int_eq(binding_table_build(&cfg, &errs), 0);
    config_errors_clear(&errs);
    config_install(config_ref(&cfg));
    start_all();
}

static void teardown(void)
{
    faultinject_set(NULL);
    stop_all();
    binding_table_free();
    config_install(NULL);
    log_close();
    spoolfix_rm_rf(dir);
    unlink(logpath);
}

/* ---- helpers ---- */

static struct spool_envelope *make_env(const char *sender, const char *rcpt)
{
    struct spool_envelope *env = calloc(1, sizeof(*env));
    env->client_addr = strdup("127.0.0.1");
    env->helo = strdup("client.example");
    env->sender = strdup(sender);
    env->binding = strdup("default");
    env->rcpts = calloc(1, sizeof(*env->rcpts));
    env->rcpt_count = 1;
    env->rcpts[0].address = strdup(rcpt);
    return env;
}

static int committed;
static void on_committed(void *arg, int error)
{
    ck_assert_int_eq(error, 0);
    queue_add(arg);
    committed++;
}

static const char *BODY = "Received: from client.example\r\nSubject: bounce me\r\n"
                          "From: <alice@origin.example>\r\n\r\nBody text.\r\n";

/* Runs the loop until cond() holds (limit seconds at most); its last value. */
static int run_until(int (*cond)(void), int limit)
{
    time_t start = time(NULL);
    while (!cond()) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(2000);
        if (time(NULL) - start > limit)
            return cond();
    }
    return 1;
}

static int is_committed(void)
{
    return committed > 0;
}

/* Spools and queues alice's message to `rcpt`; its id. */
static void submit(const char *rcpt, char id[SPOOL_ID_LEN + 1])
{
    struct spool_envelope *env = make_env("alice@origin.example", rcpt);
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(spool_writer_write(w, BODY, strlen(BODY)), 0);
    strcpy(id, spool_writer_id(w));
    committed = 0;
    ck_assert_int_eq(spool_writer_commit(w, env, on_committed, env), 0);
    ck_assert(run_until(is_committed, 10));
}

/* Takes the one ready recipient of `domain`. */
static struct queue_rcpt *take(const char *domain)
{
    domain_record *dr = queue_domain_find(domain);
    ck_assert_ptr_nonnull(dr);
    struct queue_rcpt *r = NULL;
    ck_assert_uint_eq(queue_take(dr, 0, &r, 1), 1);
    return r;
}

static int qexists(const char *id, const char *ext)
{
    spool_reap_flush();
    return spoolfix_exists(dir, "queue", id, ext);
}

/* Files in queue/ with extension `ext`. */
static int count_files(const char *ext)
{
    spool_reap_flush();
    return spoolfix_count(dir, "queue", ext);
}

/* The spool file ID.EXT ("" when there is none). */
static char *slurp(const char *id, const char *ext)
{
    char p[256];
    spoolfix_path(p, sizeof(p), dir, "queue", id, ext);
    char *text = spoolfix_read(p, NULL);
    return text ? text : strdup("");
}

static int logged(const char *text)
{
    return spoolfix_log_has(logpath, text);
}

static struct queue_stats stats(void)
{
    struct queue_stats qs;
    queue_get_stats(&qs);
    return qs;
}

static int bounce_waiting(void)
{
    return stats().bounces_waiting == 1;
}

static int dsn_queued(void)
{
    domain_record *origin = queue_domain_find("origin.example");
    return origin && vipmta_domain_ready(origin) > 0;
}

/* Takes the queued DSN, checks it reports `rcpt`, and delivers it. */
static void deliver_dsn(const char *rcpt)
{
    struct queue_rcpt *d = take("origin.example");
    ck_assert_str_eq(d->msg->sender, "");
    ck_assert_int_eq(d->msg->is_dsn, 1);
    int fd = spool_open_body(d->msg->id);
    ck_assert_int_ge(fd, 0);
    char buf[8192];
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_ptr_nonnull(strstr(buf, rcpt));
    queue_delivered(d, "250 ok");
}

static void set_faults(const char *rules)
{
    ck_assert_int_eq(faultinject_set(rules), 0);
}

/* Recovery hands each message to the queue, as the daemon does. */
static void recovered(void *arg, struct spool_envelope *env)
{
    (void)arg;
    queue_add(env);
}

/* ---- tests ---- */

/* Each step of a bounce fails once: nothing is final, no DSN is queued; the
 * bounce is tried again after the retry schedule (1 s) and then makes
 * exactly one DSN, and only then is the original removed. */
START_TEST(test_bounce_step_fails)
{
    static const struct {
        const char *rule;
        int dsn_durable; /* the DSN was durable when the step failed */
    } cases[] = {
        /* 1: the DSN's body (the 1st openat is the original's, for its headers) */
        {"openat path=*/queue/*.body nth=2 errno=EMFILE", 0},
        {"write path=*/queue/*.body errno=ENOSPC", 0},
        /* 1: the F record, its append and its sync */
        {"openat path=*/queue/*.st errno=ENOSPC", 0},
        {"write path=*/queue/*.st errno=ENOSPC", 0},
        {"fdatasync path=*/queue/*.st errno=EIO", 0},
        {"fsync path=*/queue errno=EIO", 0},
        /* 2: the DSN's commit and its sync */
        {"openat path=*/queue/*.env errno=EDQUOT", 0},
        {"write path=*/queue/*.env errno=ENOSPC", 0},
        {"fdatasync path=*/queue/*.env errno=EIO", 0},
        {"fsync path=*/queue nth=2 errno=EIO", 0},
        /* 3: the B record, its append and its sync */
        {"write path=*/queue/*.st nth=2 errno=ENOSPC", 1},
        {"fdatasync path=*/queue/*.st nth=2 errno=EIO", 1},
        {"fsync path=*/queue nth=3 errno=EIO", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char id[SPOOL_ID_LEN + 1];
        submit("nobody@gone.example", id);
        struct queue_rcpt *r = take("gone.example");
        set_faults(cases[i].rule);
        queue_failed(r, "550 5.1.1 no such user");
        ck_assert_msg(run_until(bounce_waiting, 10), "%s: the bounce did not wait", cases[i].rule);
        ck_assert_msg(faultinject_fired() == 1, "%s: fired %lu", cases[i].rule,
                      faultinject_fired());
        /* not final: the original is whole, its recipient in flight, no DSN queued */
        ck_assert_msg(qexists(id, "env"), "%s: the original is gone", cases[i].rule);
        ck_assert(qexists(id, "body"));
        ck_assert_uint_eq(stats().in_flight, 1);
        ck_assert(!dsn_queued());
        char *st = slurp(id, "st");
        ck_assert_msg(cases[i].dsn_durable || !strstr(st, "B 0 "), "%s: B before the DSN",
                      cases[i].rule);
        free(st);
        /* the DSN's envelope exists only when it was durable */
        ck_assert_int_eq(count_files("env"), 1 + cases[i].dsn_durable);

        set_faults(NULL);
        ck_assert_msg(run_until(dsn_queued, 10), "%s: no DSN after the retry", cases[i].rule);
        ck_assert_uint_eq(stats().bounces_waiting, 0);
        ck_assert_msg(!qexists(id, "env"), "%s: the original stayed", cases[i].rule);
        ck_assert_int_eq(count_files("env"), 1); /* exactly one DSN */
        ck_assert_int_eq(count_files("body"), 1);
        deliver_dsn("nobody@gone.example");
        ck_assert_int_eq(count_files("env"), 0);
        ck_assert_uint_eq(stats().messages, 0);
    }
    ck_assert(logged("not final, the bounce is tried again in 1 s"));
}
END_TEST

/* The B record cannot be written, then the daemon stops: at the next start
 * recovery finds the F record and the complete DSN, records the bounce, and
 * the DSN is queued exactly once; the original is removed. */
START_TEST(test_bounce_record_fails_then_restart)
{
    char id[SPOOL_ID_LEN + 1];
    submit("nobody@gone.example", id);
    struct queue_rcpt *r = take("gone.example");
    set_faults("write path=*/queue/*.st nth=2 count=0 errno=ENOSPC");
    queue_failed(r, "550 5.1.1 no such user");
    ck_assert(run_until(bounce_waiting, 10));
    ck_assert_int_eq(count_files("env"), 2);
    stop_all();
    set_faults(NULL);
    start_all();
    struct spool_recover_stats rs;
    ck_assert_int_eq(spool_recover(recovered, NULL, &rs), 0);
    ck_assert_uint_eq(rs.messages, 1); /* the DSN */
    ck_assert_uint_eq(rs.removed, 1);  /* the original: its recipient bounced */
    ck_assert(!qexists(id, "env"));
    ck_assert(dsn_queued());
    deliver_dsn("nobody@gone.example");
    ck_assert_uint_eq(stats().messages, 0);
}
END_TEST

/* The DSN cannot be spooled at all, then the daemon stops: the original's
 * recipient is still pending at the next start (it bounces again there). */
START_TEST(test_bounce_spool_fails_then_restart)
{
    char id[SPOOL_ID_LEN + 1];
    submit("nobody@gone.example", id);
    struct queue_rcpt *r = take("gone.example");
    set_faults("fdatasync path=*/queue/*.env count=0 errno=EIO");
    queue_failed(r, "550 5.1.1 no such user");
    ck_assert(run_until(bounce_waiting, 10));
    stop_all();
    set_faults(NULL);
    start_all();
    struct spool_recover_stats rs;
    ck_assert_int_eq(spool_recover(recovered, NULL, &rs), 0);
    ck_assert_uint_eq(rs.messages, 1);
    ck_assert_uint_eq(rs.recipients_pending, 1);
    ck_assert(qexists(id, "env"));
    ck_assert_int_eq(count_files("env"), 1); /* no DSN survived */
    r = take("gone.example");
    ck_assert_str_eq(r->msg->id, id);
    /* bounced again: one DSN */
    queue_failed(r, "550 5.1.1 no such user");
    ck_assert(run_until(dsn_queued, 10));
    deliver_dsn("nobody@gone.example");
    ck_assert(!qexists(id, "env"));
}
END_TEST

/* The queue stops while a bounce's step is with the spool (the job is cut
 * loose), and the spool finishes it afterwards: recovery settles it, and
 * exactly one DSN comes out. */
START_TEST(test_queue_stops_mid_bounce)
{
    char id[SPOOL_ID_LEN + 1];
    submit("nobody@gone.example", id);
    struct queue_rcpt *r = take("gone.example");
    spool_sync_hold(1);
    queue_failed(r, "550 5.1.1 no such user"); /* the F record waits for its sync */
    queue_shutdown();
    spool_sync_hold(0);
    spool_shutdown();
    queue_domain_registry_free();
    event_base_free(base);
    start_all();
    struct spool_recover_stats rs;
    ck_assert_int_eq(spool_recover(recovered, NULL, &rs), 0);
    /* the F record was made durable, the DSN never committed: pending */
    char *st = slurp(id, "st");
    ck_assert_ptr_nonnull(strstr(st, "F 0 "));
    free(st);
    ck_assert_uint_eq(rs.recipients_pending, 1);
    ck_assert_int_eq(count_files("body"), 1); /* the DSN's uncommitted body was deleted */
    r = take("gone.example");
    queue_failed(r, "550 5.1.1 no such user");
    ck_assert(run_until(dsn_queued, 10));
    deliver_dsn("nobody@gone.example");
    ck_assert_int_eq(count_files("env"), 0);
}
END_TEST

/* The operator deletes the message while its bounce waits: no DSN. */
START_TEST(test_bounce_waiting_then_deleted)
{
    char id[SPOOL_ID_LEN + 1];
    submit("nobody@gone.example", id);
    struct queue_rcpt *r = take("gone.example");
    set_faults("write path=*/queue/*.body count=0 errno=ENOSPC");
    queue_failed(r, "550 5.1.1 no such user");
    ck_assert(run_until(bounce_waiting, 10));
    struct queue_op_result res;
    ck_assert_int_eq(queue_delete_message(id, &res), 0);
    ck_assert_uint_eq(res.in_flight, 1);
    set_faults(NULL);
    time_t start = time(NULL);
    while (stats().messages > 0) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(2000);
        ck_assert(time(NULL) - start < 10);
    }
    ck_assert(!dsn_queued());
    ck_assert(!qexists(id, "env"));
    ck_assert_int_eq(count_files("env"), 0);
    ck_assert(logged("deleted by the operator before its DSN could be spooled"));
}
END_TEST

/* A waiting bounce is freed with the queue (shutdown) and comes back whole. */
START_TEST(test_bounce_waiting_at_shutdown)
{
    char id[SPOOL_ID_LEN + 1];
    submit("nobody@gone.example", id);
    struct queue_rcpt *r = take("gone.example");
    set_faults("openat path=*/queue/*.st count=0 errno=ENOSPC");
    queue_failed(r, "550 5.1.1 no such user");
    ck_assert(run_until(bounce_waiting, 10));
    stop_all();
    set_faults(NULL);
    start_all();
    struct spool_recover_stats rs;
    ck_assert_int_eq(spool_recover(recovered, NULL, &rs), 0);
    ck_assert_uint_eq(rs.recipients_pending, 1);
    ck_assert_int_eq(count_files("env"), 1);
}
END_TEST

/* Outcomes told through queue_outcome_fn: deferred, vetoed, expired. */
static int told_n;
static enum queue_outcome told_o;
static void on_told(const struct queue_rcpt *r, enum queue_outcome o, const char *reason,
                    void *arg)
{
    (void)r;
    (void)reason;
    (void)arg;
    told_n++;
    told_o = o;
}

START_TEST(test_outcome_told_once)
{
    char id[SPOOL_ID_LEN + 1];
    submit("slow@later.example", id);
    struct queue_rcpt *r = take("later.example");
    ck_assert_int_eq(queue_vetoed(r, "451 4.4.5 vetoed", on_told, NULL), QUEUE_OUTCOME_DEFERRED);
    ck_assert_int_eq(told_n, 1);
    ck_assert_int_eq(told_o, QUEUE_OUTCOME_DEFERRED);
    domain_record *dr = queue_domain_find("later.example");
    ck_assert_uint_eq(dr->transients, 1);
    ck_assert_uint_eq(dr->failures, 0);
    ck_assert_str_eq(queue_outcome_name(QUEUE_OUTCOME_DELETED), "deleted");
    ck_assert_str_eq(queue_outcome_name(QUEUE_OUTCOME_DELIVERED), "delivered");
}
END_TEST

static Suite *queue_faults_suite(void)
{
    Suite *s = suite_create("queue_faults");
    TCase *tc = tcase_create("bounces");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_bounce_step_fails);
    tcase_add_test(tc, test_bounce_record_fails_then_restart);
    tcase_add_test(tc, test_bounce_spool_fails_then_restart);
    tcase_add_test(tc, test_queue_stops_mid_bounce);
    tcase_add_test(tc, test_bounce_waiting_then_deleted);
    tcase_add_test(tc, test_bounce_waiting_at_shutdown);
    tcase_add_test(tc, test_outcome_told_once);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(queue_faults_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
