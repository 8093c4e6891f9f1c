/* check_queue.c: Check suite for the queue: add/take/outcomes, retries and the timer, DSNs, bindings, memory. */
#include <check.h>
#include <errno.h>
#include <event2/event.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __SANITIZE_ADDRESS__
/* from the sanitizer runtime (its header is not always installed) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#include "binding/binding_table.h"
#include "queue/queue_domain.h"
#include "config/config_current.h"
#include "queue/queue.h"
#include "spool/spool.h"
#include "spool/spool_internal.h"
#include "lib/spoolfix.h"

static char dir[64];
static struct event_base *base;

/* ---- a hand-built config: bindings, groups, limits with a 1 s retry ---- */

static unsigned schedule[] = {1, 60};
static struct config_binding bindings[] = {
    {.name = "b1", .address = "127.0.0.1"},
    {.name = "bad", .address = "192.0.2.1"}, /* not on this host: suspended */
};
static struct config_group_member g_members[] = {{.binding = "b1", .weight = 1}};
static struct config_group_member gbad_members[] = {{.binding = "bad", .weight = 1}};
static struct config_binding_group groups[] = {
    {.name = "g", .members = g_members, .member_count = 1},
    {.name = "gbad", .members = gbad_members, .member_count = 1},
};
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
    cfg.binding_count = 2;
    cfg.binding_groups = groups;
    cfg.binding_group_count = 2;
    cfg.domains = domains;
    cfg.domain_count = 1;
    cfg.refs = 1; /* the test's own reference, never released: nothing frees the static cfg */
}

/* ---- ready callback ---- */

static int ready_calls, ready_depth, ready_max_depth;
static domain_record *ready_dr[64];
static int ready_slot[64];
static void (*ready_hook)(domain_record *dr, ec_binding_slot slot);

static void on_ready(domain_record *dr, ec_binding_slot slot, void *arg)
{
    (void)arg;
    ready_depth++;
    if (ready_depth > ready_max_depth)
        ready_max_depth = ready_depth;
    if (ready_calls < 64) {
        ready_dr[ready_calls] = dr;
        ready_slot[ready_calls] = slot;
    }
    ready_calls++;
    if (ready_hook)
        ready_hook(dr, slot);
    ready_depth--;
}

static void setup(void)
{
    char err[256];
    struct config_errors errs = {0};
    strcpy(dir, "/tmp/check_queue.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    base = event_base_new();
    ck_assert_ptr_nonnull(base);
    config_setup();
    ck_assert_int_eq(binding_table_build(&cfg, &errs), 0);
    config_errors_clear(&errs);
    binding_table_check_addresses(&errs);
    config_errors_clear(&errs);
    config_install(config_ref(&cfg));
    queue_domain_registry_init();
    ck_assert_msg(spool_init(dir, base, err, sizeof(err)) == 0, "spool_init: %s", err);
    ck_assert_int_eq(queue_init(base, on_ready, NULL), 0);
    ready_calls = ready_depth = ready_max_depth = 0;
    ready_hook = NULL;
}

static void teardown(void)
{
    spool_shutdown();
    queue_shutdown();
    queue_domain_registry_free();
    binding_table_free();
    config_install(NULL);
    event_base_free(base);
    spoolfix_rm_rf(dir);
}

/* ---- helpers ---- */

/* Runs whatever is pending now (kicks, finished syncs). */
static void run_pending(void)
{
    for (int i = 0; i < 5; i++)
        event_base_loop(base, EVLOOP_NONBLOCK);
}

static struct spool_envelope *make_env(const char *sender, const char *const *rcpts, size_t n)
{
    struct spool_envelope *env = calloc(1, sizeof(*env));
    env->client_addr = strdup("127.0.0.1");
    env->helo = strdup("client.example");
    env->sender = strdup(sender);
    env->binding = strdup("default");
    env->rcpts = calloc(n, sizeof(*env->rcpts));
    env->rcpt_count = n;
    for (size_t i = 0; i < n; i++)
        env->rcpts[i].address = strdup(rcpts[i]);
    return env;
}

static int committed;
static void on_committed(void *arg, int error)
{
    ck_assert_int_eq(error, 0);
    queue_add(arg); /* as the SMTP server does after its 250 */
    committed++;
}

static const char *BODY = "Received: from client.example\r\nSubject: hello queue\r\n"
                          "From: <alice@origin.example>\r\n\r\nBody text.\r\n";

/* Spools and queues a message; returns its id. */
static void submit(struct spool_envelope *env, char id[SPOOL_ID_LEN + 1])
{
    struct spool_writer *w = spool_writer_open();
    ck_assert_ptr_nonnull(w);
    ck_assert_int_eq(spool_writer_write(w, BODY, strlen(BODY)), 0);
    strcpy(id, spool_writer_id(w));
    int before = committed;
    ck_assert_int_eq(spool_writer_commit(w, env, on_committed, env), 0);
    spoolfix_run_until(base, &committed, before + 1);
    run_pending();
}

static int exists(const char *id, const char *ext)
{
    spool_reap_flush(); /* removals run on their own thread */
    return spoolfix_exists(dir, "queue", id, ext);
}

/* The spool file ID.EXT, or NULL when there is none. */
static char *slurp(const char *id, const char *ext)
{
    char p[256];
    spoolfix_path(p, sizeof(p), dir, "queue", id, ext);
    return spoolfix_read(p, NULL);
}

/* Waits for the spool's outstanding syncs (D/B records). */
static void drain_spool(void)
{
    struct spool_stats a, b;
    do {
        spool_get_stats(&a);
        usleep(20000);
        run_pending();
        spool_get_stats(&b);
    } while (a.sync_rounds != b.sync_rounds);
    spool_reap_flush(); /* removals handed over at the end of the last iteration */
}

/* ---- tests ---- */

START_TEST(test_add_take_delivered)
{
    static const char *const rc[] = {"u1@a.example", "U2@A.Example", "u3@b.example"};
    char id[SPOOL_ID_LEN + 1];
    submit(make_env("alice@origin.example", rc, 3), id);

    domain_record *a = queue_domain_find("a.example"), *b = queue_domain_find("b.example");
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(vipmta_domain_ready(a), 2);
    ck_assert_uint_eq(vipmta_domain_ready(b), 1);
    ck_assert_int_eq(ready_calls, 2); /* one per (domain, slot) */
    ck_assert(ready_dr[0] == a || ready_dr[1] == a);
    ck_assert_int_eq(ready_slot[0], 0);
    ck_assert_int_ne(queue_has_ready(a, 0), 0);
    ck_assert_int_eq(queue_has_ready(a, 1), 0);

    struct queue_stats qs;
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.messages, 1);
    ck_assert_uint_eq(qs.recipients, 3);
    ck_assert_uint_eq(qs.active, 3);

    struct queue_rcpt *out[8];
    ck_assert_uint_eq(queue_take(a, 0, out, 8), 2);
    ck_assert_str_eq(out[0]->address, "u1@a.example");
    ck_assert_str_eq(out[1]->address, "U2@A.Example");
    ck_assert_uint_eq(out[1]->index, 1);
    ck_assert_str_eq(out[0]->msg->id, id);
    ck_assert_str_eq(out[0]->msg->sender, "alice@origin.example");
    ck_assert(out[0]->msg == out[1]->msg);
    ck_assert_int_eq(out[0]->in_flight, 1);
    ck_assert_uint_eq(vipmta_domain_ready(a), 0);
    ck_assert_uint_eq(queue_take(a, 0, out + 2, 8), 0);
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.in_flight, 2);
    ck_assert_uint_eq(qs.active, 1);

    queue_delivered(out[0], "250 ok");
    queue_delivered(out[1], "250 ok");
    ck_assert_uint_eq(a->deliveries, 2);
    ck_assert(exists(id, "env")); /* b.example still pending */
    char *st = slurp(id, "st");
    ck_assert_ptr_nonnull(st);
    ck_assert_ptr_nonnull(strstr(st, "D 0 "));
    ck_assert_ptr_nonnull(strstr(st, "D 1 "));
    free(st);

    ck_assert_uint_eq(queue_take(b, 0, out, 8), 1);
    queue_delivered(out[0], "250 ok");
    ck_assert(!exists(id, "env"));
    ck_assert(!exists(id, "body"));
    ck_assert(!exists(id, "st"));
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.messages, 0);
    ck_assert_uint_eq(qs.recipients, 0);
    ck_assert_uint_eq(qs.in_flight, 0);
    drain_spool();
}
END_TEST

START_TEST(test_take_one_message_oldest_first)
{
    static const char *const r1[] = {"x1@c.example", "x2@c.example", "x3@c.example"};
    static const char *const r2[] = {"y1@c.example"};
    char id1[SPOOL_ID_LEN + 1], id2[SPOOL_ID_LEN + 1];
    submit(make_env("s@origin.example", r1, 3), id1);
    submit(make_env("s@origin.example", r2, 1), id2);
    domain_record *c = queue_domain_find("c.example");
    ck_assert_uint_eq(vipmta_domain_ready(c), 4);
    struct queue_rcpt *out[8];
    ck_assert_uint_eq(queue_take(c, 0, out, 2), 2); /* max respected */
    ck_assert_str_eq(out[0]->msg->id, id1);
    ck_assert_uint_eq(queue_take(c, 0, out + 2, 8), 1); /* the rest of message 1 only */
    ck_assert_str_eq(out[2]->msg->id, id1);
    ck_assert_uint_eq(queue_take(c, 0, out + 3, 8), 1);
    ck_assert_str_eq(out[3]->msg->id, id2);
    for (int i = 0; i < 4; i++)
        queue_delivered(out[i], "250 ok");
    ck_assert(!exists(id1, "env"));
    ck_assert(!exists(id2, "env"));
    drain_spool();
}
END_TEST

START_TEST(test_deferred_and_timer)
{
    static const char *const rc[] = {"d@slow.example"};
    char id[SPOOL_ID_LEN + 1];
    submit(make_env("s@origin.example", rc, 1), id);
    domain_record *dr = queue_domain_find("slow.example");
    struct queue_rcpt *r;
    ck_assert_uint_eq(queue_take(dr, 0, &r, 1), 1);

    time_t now = time(NULL);
    queue_deferred(r, "451 try later", NULL, NULL);
    ck_assert_uint_eq(r->attempts, 1);
    ck_assert(r->next_attempt >= now + 1 && r->next_attempt <= now + 2); /* schedule[0] = 1 s */
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 1);
    ck_assert_uint_eq(vipmta_domain_ready(dr), 0);
    ck_assert_uint_eq(dr->transients, 1);
    ck_assert_int_eq(queue_has_ready(dr, 0), 0);
    char *st = slurp(id, "st");
    char want[64];
    snprintf(want, sizeof(want), "T 0 1 %lld\n", (long long)r->next_attempt);
    ck_assert_ptr_nonnull(st);
    ck_assert_str_eq(st, want);
    free(st);

    /* the timer makes it ready again */
    int before = ready_calls;
    spoolfix_run_until(base, &ready_calls, before + 1);
    ck_assert(time(NULL) >= r->next_attempt);
    ck_assert(ready_dr[before] == dr);
    ck_assert_int_ne(queue_has_ready(dr, 0), 0);
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 0);
    ck_assert_uint_eq(vipmta_domain_ready(dr), 1);

    /* second deferral: schedule[1] = 60 s; the last entry repeats after that */
    ck_assert_uint_eq(queue_take(dr, 0, &r, 1), 1);
    now = time(NULL);
    queue_deferred(r, "451 again", NULL, NULL);
    ck_assert_uint_eq(r->attempts, 2);
    ck_assert(r->next_attempt >= now + 60 && r->next_attempt <= now + 61);
    ck_assert_uint_eq(queue_take(dr, 0, &r, 1), 0);

    /* a flush makes it ready at once, without counting an attempt */
    before = ready_calls;
    queue_flush_domain(dr);
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 0);
    spoolfix_run_until(base, &ready_calls, before + 1);
    ck_assert_uint_eq(queue_take(dr, 0, &r, 1), 1);
    ck_assert_uint_eq(r->attempts, 2);
    queue_deferred(r, "451 still", NULL, NULL);
    ck_assert_uint_eq(r->attempts, 3);
    ck_assert(r->next_attempt >= time(NULL) + 59); /* last entry repeats */
    struct queue_stats qs;
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.delayed, 1);
    ck_assert_uint_eq(qs.active, 0);
}
END_TEST

/* Recovered envelopes: only pending recipients are queued, future ones delayed. */
START_TEST(test_add_recovered_states)
{
    static const char *const rc[] = {"a@r.example", "b@r.example", "c@r.example", "d@r.example"};
    struct spool_envelope *env = make_env("s@origin.example", rc, 4);
    strcpy(env->id, "0000000000000abc");
    env->received = time(NULL);
    env->rcpts[0].state = SPOOL_RCPT_DELIVERED;
    env->rcpts[1].state = SPOOL_RCPT_BOUNCED;
    env->rcpts[2].attempts = 4;
    env->rcpts[2].next_attempt = time(NULL) + 3600;
    env->rcpts[3].attempts = 2;
    env->rcpts[3].next_attempt = time(NULL) - 10; /* overdue: ready */
    queue_add(env);
    domain_record *dr = queue_domain_find("r.example");
    ck_assert_uint_eq(vipmta_domain_ready(dr), 1);
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 1);
    struct queue_rcpt *r;
    ck_assert_uint_eq(queue_take(dr, 0, &r, 1), 1);
    ck_assert_str_eq(r->address, "d@r.example");
    ck_assert_uint_eq(r->index, 3);
    ck_assert_uint_eq(r->attempts, 2);
    ck_assert_uint_eq(r->msg->rcpt_open, 2);
    queue_release(r);

    /* nothing pending at all: removed from the spool, nothing queued */
    env = make_env("s@origin.example", rc, 1);
    strcpy(env->id, "0000000000000abd");
    env->rcpts[0].state = SPOOL_RCPT_DELIVERED;
    queue_add(env);
    struct queue_stats qs;
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.messages, 1);
    ck_assert_uint_eq(qs.recipients, 2);
}
END_TEST

/* Reads a spooled body into a string. */
static char *body_of(const char *id)
{
    int fd = spool_open_body(id);
    ck_assert_int_ge(fd, 0);
    char *buf = calloc(1, 65536);
    size_t have = 0;
    ssize_t n;
    while ((n = read(fd, buf + have, 65535 - have)) > 0)
        have += (size_t)n;
    close(fd);
    return buf;
}

START_TEST(test_failed_sends_dsn)
{
    static const char *const rc[] = {"nobody@gone.example", "ok@gone.example"};
    char id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("alice@origin.example", rc, 2);
    free(env->binding);
    env->binding = strdup("b1");
    submit(env, id);
    domain_record *dr = queue_domain_find("gone.example");
    struct queue_rcpt *out[2];
    ck_assert_uint_eq(queue_take(dr, 1, out, 2), 2); /* on b1's slot */
    ck_assert_int_eq(out[0]->msg->binding, config_get_binding_id_from_name("b1"));
    queue_failed(out[0], "550 5.1.1 <nobody@gone.example>: no such user");
    ck_assert_uint_eq(dr->failures, 1);
    queue_delivered(out[1], "250 ok");
    /* the failed recipient is not final before its DSN is durable */
    ck_assert(exists(id, "env"));

    /* the DSN is queued once durable: to the sender, from the null sender */
    domain_record *origin = NULL;
    time_t start = time(NULL);
    while (!(origin = queue_domain_find("origin.example")) || !vipmta_domain_ready(origin)) {
        event_base_loop(base, EVLOOP_ONCE);
        ck_assert(time(NULL) - start < 10);
    }
    ck_assert(!exists(id, "env")); /* then the original is done */
    ck_assert_int_eq(queue_has_ready(origin, 1), 1); /* same binding as the original */
    struct queue_rcpt *d;
    ck_assert_uint_eq(queue_take(origin, 1, &d, 1), 1);
    ck_assert_str_eq(d->address, "alice@origin.example");
    ck_assert_str_eq(d->msg->sender, "");
    ck_assert_int_eq(d->msg->is_dsn, 1);
    ck_assert_str_ne(d->msg->id, id);

    char err[256];
    struct spool_envelope *de = spool_read_envelope(d->msg->id, err, sizeof(err));
    ck_assert_msg(de != NULL, "%s", err);
    ck_assert_str_eq(de->sender, "");
    ck_assert_int_eq(de->is_dsn, 1);
    ck_assert_uint_eq(de->rcpt_count, 1);
    ck_assert_str_eq(de->rcpts[0].address, "alice@origin.example");
    ck_assert_str_eq(de->binding, "b1");
    spool_envelope_free(de);

    char *text = body_of(d->msg->id);
    ck_assert_ptr_nonnull(strstr(text, "nobody@gone.example"));
    ck_assert_ptr_nonnull(strstr(text, "no such user"));
    ck_assert_ptr_nonnull(strstr(text, "Subject: hello queue")); /* original headers */
    ck_assert_ptr_null(strstr(text, "Body text.")); /* but not its body */
    ck_assert_ptr_nonnull(strstr(text, "mx.test.example"));
    free(text);

    /* a DSN that fails itself makes no DSN */
    queue_failed(d, "550 mailbox full");
    drain_spool();
    struct queue_stats qs;
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.messages, 0);
}
END_TEST

/* Counts the files in queue/. */
static int queue_files(void)
{
    return spoolfix_count(dir, "queue", NULL);
}

START_TEST(test_no_dsn_for_null_sender)
{
    static const char *const rc[] = {"nobody@gone.example"};
    char id[SPOOL_ID_LEN + 1];
    submit(make_env("", rc, 1), id);
    domain_record *dr = queue_domain_find("gone.example");
    struct queue_rcpt *r;
    ck_assert_uint_eq(queue_take(dr, 0, &r, 1), 1);
    queue_failed(r, "550 no");
    drain_spool();
    struct queue_stats qs;
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.messages, 0);
    ck_assert_int_eq(queue_files(), 0);

    /* a message flagged as a DSN, whatever its sender */
    struct spool_envelope *env = make_env("postmaster@origin.example", rc, 1);
    env->is_dsn = 1;
    submit(env, id);
    ck_assert_uint_eq(queue_take(dr, 0, &r, 1), 1);
    queue_failed(r, "550 no");
    drain_spool();
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.messages, 0);
    ck_assert_int_eq(queue_files(), 0);
}
END_TEST

/* What the queue told its caller (queue_outcome_fn). */
static int told_count;
static enum queue_outcome told_outcome;
static char told_reason[1024];

static void on_told(const struct queue_rcpt *r, enum queue_outcome o, const char *reason,
                    void *arg)
{
    (void)r;
    (void)arg;
    told_count++;
    told_outcome = o;
    snprintf(told_reason, sizeof(told_reason), "%s", reason ? reason : "");
}

START_TEST(test_expired_bounces)
{
    static const char *const rc[] = {"late@slow.example"};
    char id[SPOOL_ID_LEN + 1];
    struct spool_envelope *env = make_env("alice@origin.example", rc, 1);
    env->received = time(NULL) - 6 * 86400; /* lifetime is 5 days */
    submit(env, id);
    domain_record *dr = queue_domain_find("slow.example");
    struct queue_rcpt *r;
    ck_assert_uint_eq(queue_take(dr, 0, &r, 1), 1);
    ck_assert_int_eq(queue_deferred(r, "451 4.7.1 greylisted", on_told, NULL),
                     QUEUE_OUTCOME_BOUNCED);
    /* decided once: bounced for the caller too, counted as a failure only */
    ck_assert_int_eq(told_count, 1);
    ck_assert_int_eq(told_outcome, QUEUE_OUTCOME_BOUNCED);
    ck_assert_str_eq(queue_outcome_name(told_outcome), "bounced");
    ck_assert_ptr_nonnull(strstr(told_reason, "4.4.7 message expired after 6 days"));
    ck_assert_ptr_nonnull(strstr(told_reason, "greylisted"));
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 0);
    ck_assert_uint_eq(dr->failures, 1);
    ck_assert_uint_eq(dr->transients, 0);
    domain_record *origin = NULL;
    time_t start = time(NULL);
    while (!(origin = queue_domain_find("origin.example")) || !vipmta_domain_ready(origin)) {
        event_base_loop(base, EVLOOP_ONCE);
        ck_assert(time(NULL) - start < 10);
    }
    ck_assert(!exists(id, "env"));
    struct queue_rcpt *d;
    ck_assert_uint_eq(queue_take(origin, 0, &d, 1), 1);
    char *text = body_of(d->msg->id);
    ck_assert_ptr_nonnull(strstr(text, "4.4.7"));
    ck_assert_ptr_nonnull(strstr(text, "expired after 6 days"));
    ck_assert_ptr_nonnull(strstr(text, "greylisted"));
    free(text);
    queue_release(d);
}
END_TEST

START_TEST(test_release)
{
    static const char *const rc[] = {"a@rel.example", "b@rel.example"};
    char id[SPOOL_ID_LEN + 1];
    submit(make_env("s@origin.example", rc, 2), id);
    domain_record *dr = queue_domain_find("rel.example");
    struct queue_rcpt *out[2];
    ck_assert_uint_eq(queue_take(dr, 0, out, 2), 2);
    int before = ready_calls;
    queue_release(out[1]);
    queue_release(out[0]);
    ck_assert_int_eq(ready_calls, before); /* not from inside a queue call */
    ck_assert_uint_eq(vipmta_domain_ready(dr), 2);
    run_pending();
    ck_assert_int_eq(ready_calls, before + 1);
    ck_assert_uint_eq(queue_take(dr, 0, out, 2), 2);
    ck_assert_str_eq(out[0]->address, "a@rel.example"); /* order kept */
    ck_assert_uint_eq(out[0]->attempts, 0);
    queue_release(out[0]);
    queue_release(out[1]);
}
END_TEST

/* The ready callback may use the queue; it is never re-entered. */
static void greedy(domain_record *dr, ec_binding_slot slot)
{
    struct queue_rcpt *out[16];
    size_t n = queue_take(dr, slot, out, 16);
    if (ready_calls == 1)
        for (size_t i = 0; i < n; i++)
            queue_release(out[i]); /* gains ready work again: must not recurse */
    else
        for (size_t i = 0; i < n; i++)
            queue_delivered(out[i], "250 ok");
}

START_TEST(test_ready_not_reentrant)
{
    static const char *const rc[] = {"a@re.example", "b@re.example"};
    char id[SPOOL_ID_LEN + 1];
    ready_hook = greedy;
    submit(make_env("s@origin.example", rc, 2), id);
    run_pending();
    ck_assert_int_eq(ready_max_depth, 1);
    ck_assert_int_eq(ready_calls, 2);
    ck_assert(!exists(id, "env"));
    drain_spool();
}
END_TEST

/* Domain records that stay idle are forgotten (memory is bounded by the
 * domains in use); one with mail is kept. */
START_TEST(test_idle_domains_forgotten)
{
    static const char *const gone_rc[] = {"a@gone.example"};
    static const char *const kept_rc[] = {"b@kept.example"};
    struct spool_envelope *env = make_env("s@origin.example", gone_rc, 1);
    snprintf(env->id, sizeof(env->id), "%016x", 0x200);
    queue_add(env);
    env = make_env("s@origin.example", kept_rc, 1);
    snprintf(env->id, sizeof(env->id), "%016x", 0x201);
    queue_add(env);
    domain_record *gone = queue_domain_find("gone.example");
    ck_assert_ptr_nonnull(gone);
    struct queue_rcpt *r;
    ec_binding_slot slot = VIPMTA_BINDING_DEFAULT_SLOT;
    ck_assert_uint_eq(queue_take(gone, slot, &r, 1), 1);
    time_t now = time(NULL);
    queue_sweep_domains(now, 10);
    ck_assert_ptr_nonnull(queue_domain_find("gone.example")); /* in flight: kept */
    queue_delivered(r, "250 ok");
    run_pending();
    size_t before = queue_domain_count();
    queue_sweep_domains(now, 10);      /* idle from now on */
    queue_sweep_domains(now + 5, 10);  /* not long enough */
    ck_assert_ptr_nonnull(queue_domain_find("gone.example"));
    queue_sweep_domains(now + 10, 10);
    ck_assert_ptr_null(queue_domain_find("gone.example"));
    ck_assert_uint_eq(queue_domain_count(), before - 1);
    ck_assert_ptr_nonnull(queue_domain_find("kept.example")); /* its mail waits */
    /* mail for it again: a new record, counting from zero */
    env = make_env("s@origin.example", gone_rc, 1);
    snprintf(env->id, sizeof(env->id), "%016x", 0x202);
    queue_add(env);
    gone = queue_domain_find("gone.example");
    ck_assert_ptr_nonnull(gone);
    ck_assert_uint_eq(gone->deliveries, 0);
    ck_assert_uint_eq(vipmta_domain_ready(gone), 1);
    drain_spool();
}
END_TEST

START_TEST(test_binding_choice)
{
    static const char *const rc[] = {"x@bind.example"};
    ec_binding_slot b1 = config_get_binding_id_from_name("b1");
    ck_assert_int_gt(b1, 0);
    ck_assert_int_ne(vipmta_binding_by_name("bad")->suspended, 0);
    /* the binding the envelope names and its group -> where the mail goes:
     * never to a binding the envelope does not name or allow */
    struct {
        const char *binding, *group, *want;
        int waits;
    } cases[] = {
        {"b1", NULL, "b1", 0},
        {"bad", "g", "b1", 0},     /* suspended, chosen from a group: another member */
        {"nope", "g", "b1", 0},    /* not configured (removed), from a group: another member */
        {"bad", NULL, "bad", 1},   /* suspended and pinned: waits for it */
        {"bad", "gbad", "bad", 1}, /* no member of its group usable: waits */
        {"gone", "gbad", "gone", 1}, /* not configured, group unusable: waits, absent */
        {"gone", NULL, "gone", 1},  /* the same absent binding again */
        {NULL, "nogroup", "default", 0},
        {NULL, NULL, "default", 0},
        {"default", "g", "default", 0},
    };
    domain_record *dr = queue_domain_get("bind.example");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct spool_envelope *env = make_env("s@origin.example", rc, 1);
        snprintf(env->id, sizeof(env->id), "%016zx", i + 1);
        free(env->binding);
        env->binding = cases[i].binding ? strdup(cases[i].binding) : NULL;
        env->binding_group = cases[i].group ? strdup(cases[i].group) : NULL;
        env->received = time(NULL);
        ready_calls = 0;
        queue_add(env);
        run_pending();
        ec_binding_slot want = config_get_binding_id_from_name(cases[i].want);
        ck_assert_msg(want != EC_BINDING_SLOT_UNBOUND, "case %zu: no binding %s", i, cases[i].want);
        ck_assert_int_eq(binding_available(want), !cases[i].waits);
        /* waiting mail asks for no connection */
        ck_assert_msg(ready_calls == (cases[i].waits ? 0 : 1), "case %zu: %d ready calls", i,
                      ready_calls);
        struct queue_rcpt *r;
        ck_assert_msg(queue_take(dr, want, &r, 1) == 1, "case %zu", i);
        ck_assert_int_eq(r->msg->binding, want);
        queue_release(r);
        ck_assert_uint_eq(queue_take(dr, want, &r, 1), 1);
        /* leave it in flight: queue_shutdown frees it */
    }
    const vipmta_binding *gone = vipmta_binding_by_name("gone");
    ck_assert_ptr_nonnull(gone);
    ck_assert_int_ne(gone->absent, 0);
    ck_assert_int_ne(gone->suspended, 0);
}
END_TEST

/* Mail waiting on a suspended binding of a group moves when another member
 * becomes usable; pinned mail stays. */
START_TEST(test_waiting_mail_moves_within_its_group)
{
    static const char *const rc[] = {"y@wait.example"};
    domain_record *dr = queue_domain_get("wait.example");
    ec_binding_slot bad = config_get_binding_id_from_name("bad");
    ec_binding_slot b1 = config_get_binding_id_from_name("b1");
    vipmta_binding *b1w = (vipmta_binding *)vipmta_binding_by_slot(b1);
    b1w->suspended = 1; /* as if its address had gone: group g has nothing usable */
    const char *names[2] = {"bad", "b1"}, *wanted_groups[2] = {NULL, "g"};
    for (int i = 0; i < 2; i++) {
        struct spool_envelope *env = make_env("s@origin.example", rc, 1);
        snprintf(env->id, sizeof(env->id), "%016x", 0x100 + i);
        free(env->binding);
        env->binding = strdup(names[i]);
        env->binding_group = wanted_groups[i] ? strdup(wanted_groups[i]) : NULL;
        queue_add(env);
    }
    ck_assert_uint_eq(vipmta_domain_ready(dr), 2);
    b1w->suspended = 0; /* b1 is back */
    ready_calls = 0;
    queue_bindings_changed();
    run_pending();
    ck_assert_int_ge(ready_calls, 1);
    struct queue_rcpt *r;
    ck_assert_uint_eq(queue_take(dr, b1, &r, 1), 1);
    ck_assert_str_eq(r->msg->id, "0000000000000101"); /* the group's message, on b1 now */
    queue_release(r);
    ck_assert_uint_eq(queue_take(dr, bad, &r, 1), 1); /* the pinned one still waits on bad */
    ck_assert_str_eq(r->msg->id, "0000000000000100");
    queue_release(r);
}
END_TEST

/* Memory: 100,000 queued recipients, measured on the heap. */
static size_t heap_in_use(void)
{
#ifdef __SANITIZE_ADDRESS__
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

/* Queue memory per recipient: the heap in use after queue_add (which frees
 * each envelope) minus before the envelopes were built. Domain records are
 * created beforehand: they belong to the domain registry, not per recipient. */
static double measure(size_t nmsg, size_t per_msg, size_t ndomains)
{
    size_t total = nmsg * per_msg;
    char addr[128];
    for (size_t d = 0; d < ndomains; d++) {
        snprintf(addr, sizeof(addr), "domain%zu.example", d);
        queue_domain_get(addr);
    }
    size_t before = heap_in_use();
    for (size_t m = 0; m < nmsg; m++) {
        struct spool_envelope *env = calloc(1, sizeof(*env));
        snprintf(env->id, sizeof(env->id), "%016zx", m + 0x100000);
        env->sender = strdup("newsletter-bounces+12345@sender.example.com");
        env->binding = strdup("b1");
        env->received = time(NULL);
        env->rcpts = calloc(per_msg, sizeof(*env->rcpts));
        env->rcpt_count = per_msg;
        for (size_t i = 0; i < per_msg; i++) {
            size_t k = m * per_msg + i;
            snprintf(addr, sizeof(addr), "firstname.lastname%zu@domain%zu.example", k,
                     k % ndomains);
            env->rcpts[i].address = strdup(addr);
            /* a third of them wait for a retry (the heap) */
            if (k % 3 == 0)
                env->rcpts[i].next_attempt = time(NULL) + 600;
        }
        queue_add(env);
    }
    size_t after = heap_in_use();
    struct queue_stats qs;
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.recipients, total);
    return (double)(after - before) / (double)total;
}

START_TEST(test_memory_per_recipient)
{
    struct {
        size_t nmsg, per_msg, ndomains;
    } shapes[] = {
        {1000, 100, 1000},  /* 100 recipients per message, many domains */
        {100000, 1, 100},   /* one recipient per message: the worst case */
    };
    if (heap_in_use() == 0) { /* valgrind replaces malloc: mallinfo2 reports nothing */
        printf("queue memory: the allocator keeps no statistics here: not measured\n");
        return;
    }
    for (size_t s = 0; s < 2; s++) {
        double per = measure(shapes[s].nmsg, shapes[s].per_msg, shapes[s].ndomains);
        printf("queue memory: %zu messages x %zu recipients over %zu domains: %.1f bytes per "
               "recipient (%s)\n", shapes[s].nmsg, shapes[s].per_msg, shapes[s].ndomains, per,
#ifdef __SANITIZE_ADDRESS__
               "ASan: requested bytes, no malloc overhead"
#else
               "mallinfo2"
#endif
        );
        ck_assert(per > 0);
        ck_assert(per < 512);
        queue_shutdown(); /* start the next shape empty */
        ck_assert_int_eq(queue_init(base, on_ready, NULL), 0);
    }
}
END_TEST


/* ---- operator actions (vipmtactl queue delete / bounce) ---- */

static int where_count[3];
static void count_where(const struct queue_rcpt *r, enum queue_rcpt_where w, void *arg)
{
    (void)r;
    (void)arg;
    where_count[w]++;
}

/* Waits until the DSN for origin.example is queued; 1 when one came. */
static int dsn_arrived(void)
{
    domain_record *origin;
    time_t start = time(NULL);
    while (!(origin = queue_domain_find("origin.example")) || !vipmta_domain_ready(origin)) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(5000);
        if (time(NULL) - start > 1)
            return 0;
    }
    return 1;
}

START_TEST(test_op_delete_queued)
{
    static const char *const rc[] = {"a@del.example", "b@del.example", "c@other.example"};
    char id[SPOOL_ID_LEN + 1], keep[SPOOL_ID_LEN + 1];
    submit(make_env("alice@origin.example", rc, 3), id);
    submit(make_env("alice@origin.example", rc, 1), keep);
    domain_record *dr = queue_domain_find("del.example"), *other = queue_domain_find("other.example");
    struct queue_rcpt *out[2];
    /* one delayed, one ready and in the middle of a lane, one ready elsewhere */
    ck_assert_uint_eq(queue_take(dr, 0, out, 1), 1);
    queue_deferred(out[0], "451 later", NULL, NULL);
    memset(where_count, 0, sizeof(where_count));
    queue_foreach_rcpt(count_where, NULL);
    ck_assert_int_eq(where_count[QUEUE_RCPT_READY], 3);
    ck_assert_int_eq(where_count[QUEUE_RCPT_DELAYED], 1);
    ck_assert_int_eq(where_count[QUEUE_RCPT_IN_FLIGHT], 0);

    struct queue_op_result res;
    ck_assert_int_eq(queue_delete_message(id, &res), 0);
    ck_assert_uint_eq(res.done, 3);
    ck_assert_uint_eq(res.in_flight, 0);
    ck_assert_uint_eq(vipmta_domain_ready(dr), 1); /* `keep` only */
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 0);
    ck_assert_uint_eq(vipmta_domain_ready(other), 0);
    ck_assert(!exists(id, "env"));
    ck_assert(!exists(id, "body"));
    ck_assert(exists(keep, "env"));
    errno = 0;
    ck_assert_int_eq(queue_delete_message(id, &res), -1);
    ck_assert_int_eq(errno, ENOENT);
    /* the lane still works: the other message is taken, no DSN was made */
    ck_assert_uint_eq(queue_take(dr, 0, out, 2), 1);
    ck_assert_str_eq(out[0]->msg->id, keep);
    queue_delivered(out[0], "250 ok");
    ck_assert(!dsn_arrived());
    struct queue_stats qs;
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.messages, 0);
    ck_assert_uint_eq(qs.recipients, 0);
    ck_assert_uint_eq(qs.active, 0);
    ck_assert_uint_eq(qs.delayed, 0);
    drain_spool();
}
END_TEST

START_TEST(test_op_delete_in_flight)
{
    static const char *const rc[] = {"a@fly.example", "b@fly.example", "c@rest.example"};
    char id[SPOOL_ID_LEN + 1];
    submit(make_env("alice@origin.example", rc, 3), id);
    domain_record *dr = queue_domain_find("fly.example");
    struct queue_rcpt *out[2];
    ck_assert_uint_eq(queue_take(dr, 0, out, 2), 2);
    struct queue_op_result res;
    ck_assert_int_eq(queue_delete_message(id, &res), 0);
    ck_assert_uint_eq(res.done, 1);
    ck_assert_uint_eq(res.in_flight, 2);
    ck_assert(exists(id, "env")); /* the delivery engine still holds two */
    /* a deferral and a release drop them instead of queueing them again */
    queue_deferred(out[0], "451 later", NULL, NULL);
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 0);
    ck_assert(exists(id, "env"));
    queue_release(out[1]);
    ck_assert_uint_eq(vipmta_domain_ready(dr), 0);
    ck_assert(!exists(id, "env"));
    ck_assert(!dsn_arrived());
    struct queue_stats qs;
    queue_get_stats(&qs);
    ck_assert_uint_eq(qs.messages, 0);
    ck_assert_uint_eq(qs.in_flight, 0);
    drain_spool();
}
END_TEST

START_TEST(test_op_bounce)
{
    static const char *const rc[] = {"a@bnc.example", "b@bnc.example"};
    char id[SPOOL_ID_LEN + 1];
    submit(make_env("alice@origin.example", rc, 2), id);
    domain_record *dr = queue_domain_find("bnc.example");
    struct queue_rcpt *out[1];
    ck_assert_uint_eq(queue_take(dr, 0, out, 1), 1);
    struct queue_op_result res;
    ck_assert_int_eq(queue_bounce_message(id, &res), 0);
    ck_assert_uint_eq(res.done, 1);
    ck_assert_uint_eq(res.in_flight, 1);
    ck_assert_uint_eq(dr->failures, 1);
    ck_assert(exists(id, "env"));
    ck_assert(dsn_arrived()); /* for b@ */
    /* the one in flight is deferred: it bounces instead */
    ck_assert_int_eq(queue_deferred(out[0], "451 later", NULL, NULL), QUEUE_OUTCOME_BOUNCED);
    ck_assert_uint_eq(dr->failures, 2);
    ck_assert_uint_eq(dr->transients, 0);
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 0);
    /* two DSNs to the sender, each naming the operator */
    domain_record *origin = queue_domain_find("origin.example");
    time_t start = time(NULL);
    while (vipmta_domain_ready(origin) < 2) {
        event_base_loop(base, EVLOOP_ONCE);
        ck_assert(time(NULL) - start < 10);
    }
    ck_assert(!exists(id, "env"));
    struct queue_rcpt *d[2];
    ck_assert_uint_eq(queue_take(origin, 0, d, 1), 1);
    ck_assert_uint_eq(queue_take(origin, 0, d + 1, 1), 1);
    for (int i = 0; i < 2; i++) {
        char *text = body_of(d[i]->msg->id);
        ck_assert_ptr_nonnull(strstr(text, "bounced by the operator"));
        free(text);
        queue_delivered(d[i], "250 ok");
    }
    errno = 0;
    ck_assert_int_eq(queue_bounce_message(id, &res), -1);
    ck_assert_int_eq(errno, ENOENT);
    drain_spool();
}
END_TEST

START_TEST(test_flush_domain_count)
{
    static const char *const rc[] = {"a@fl.example", "b@fl.example"};
    char id[SPOOL_ID_LEN + 1];
    submit(make_env("alice@origin.example", rc, 2), id);
    domain_record *dr = queue_domain_find("fl.example");
    struct queue_rcpt *out[2];
    ck_assert_uint_eq(queue_take(dr, 0, out, 2), 2);
    queue_deferred(out[0], "451 later", NULL, NULL);
    queue_deferred(out[1], "451 later", NULL, NULL);
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 2);
    ck_assert_uint_eq(queue_flush_domain_count(dr), 2);
    ck_assert_uint_eq(vipmta_domain_delayed(dr), 0);
    ck_assert_uint_eq(vipmta_domain_ready(dr), 2);
    ck_assert_uint_eq(queue_flush_domain_count(dr), 0);
}
END_TEST

static Suite *queue_suite(void)
{
    Suite *s = suite_create("queue");
    TCase *tc = tcase_create("queue");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_add_take_delivered);
    tcase_add_test(tc, test_take_one_message_oldest_first);
    tcase_add_test(tc, test_deferred_and_timer);
    tcase_add_test(tc, test_add_recovered_states);
    tcase_add_test(tc, test_failed_sends_dsn);
    tcase_add_test(tc, test_no_dsn_for_null_sender);
    tcase_add_test(tc, test_expired_bounces);
    tcase_add_test(tc, test_release);
    tcase_add_test(tc, test_ready_not_reentrant);
    tcase_add_test(tc, test_idle_domains_forgotten);
    tcase_add_test(tc, test_binding_choice);
    tcase_add_test(tc, test_waiting_mail_moves_within_its_group);
    tcase_add_test(tc, test_memory_per_recipient);
    tcase_add_test(tc, test_op_delete_queued);
    tcase_add_test(tc, test_op_delete_in_flight);
    tcase_add_test(tc, test_op_bounce);
    tcase_add_test(tc, test_flush_domain_count);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(queue_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
