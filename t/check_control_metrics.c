/* check_control_metrics.c: Check suite for the Prometheus exposition (escaping, HELP/TYPE, histogram, domain cap, modules' counters); the `metrics` config is checked in check_config.c. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control/control_metrics_render.h"
#include "plugin/plugin_internal.h"
#include "vipmta_metrics.h"


static char *escaped(const char *v)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ck_assert_ptr_nonnull(f);
    control_metrics_write_label_value(f, v);
    fclose(f);
    return out;
}

START_TEST(test_label_escaping)
{
    char *s = escaped("a\\b\"c\nd");
    ck_assert_str_eq(s, "a\\\\b\\\"c\\nd");
    free(s);
    s = escaped("plain.example");
    ck_assert_str_eq(s, "plain.example");
    free(s);
    s = escaped(NULL);
    ck_assert_str_eq(s, "");
    free(s);
}
END_TEST

static struct control_metrics_binding_sample bindings[2];
static struct control_metrics_module_sample modules[1];
static struct control_metrics_domain_sample domains[2];

static void fill(struct control_metrics_snapshot *s)
{
    memset(s, 0, sizeof(*s));
    bindings[0] = (struct control_metrics_binding_sample){.name = "default", .slot = 0};
    bindings[1] = (struct control_metrics_binding_sample){
        .name = "vip\"1",
        .slot = 1,
        .counters = {.connections = 7, .connect_failures = 1, .vetoes = 2, .delivered = 40,
                     .deferred = 3, .bounced = 1, .open = 2},
    };
    modules[0] = (struct control_metrics_module_sample){"netacl", 2};
    domains[0] = (struct control_metrics_domain_sample){.domain = "ok.example", .active = 3, .delayed = 4,
                                                .connections = 2, .deliveries = 40,
                                                .transients = 3, .failures = 1, .attempts = 44};
    domains[1] = (struct control_metrics_domain_sample){.domain = "bad\\dom\"ain\nx"};
    s->version = "1.2.3";
    s->uptime_seconds = 12.5;
    s->totals = (struct control_stats_totals){.sessions = 5, .messages_accepted = 44,
                                      .recipients_accepted = 45, .messages_rejected = 1};
    s->bindings = bindings;
    s->binding_count = 2;
    s->modules = modules;
    s->module_count = 1;
    s->domains = domains;
    s->domain_count = 2;
    s->domains_omitted = 3;
    s->queue_recipients = 9;
    s->sync.buckets[0] = 1;
    s->sync.buckets[3] = 2;
    s->sync.buckets[CONTROL_STATS_SYNC_BUCKETS - 1] = 1;
    s->sync.count = 4;
    s->sync.sum_usec = 2500300;
    s->sync_bounds_usec = control_stats_sync_bounds_usec;
}

static char *render(const struct control_metrics_snapshot *s)
{
    char *text = NULL;
    size_t len = 0;
    ck_assert_int_eq(control_metrics_render(s, &text, &len), 0);
    ck_assert_ptr_nonnull(text);
    ck_assert_uint_eq(strlen(text), len);
    return text;
}

/* Non-zero when `text` has the line `line` exactly. */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, line, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

#define ck_assert_line(text, line) ck_assert_msg(has_line(text, line), "no line [%s] in:\n%s", line, text)

START_TEST(test_render_values_and_escaping)
{
    struct control_metrics_snapshot s;
    fill(&s);
    char *t = render(&s);
    ck_assert_line(t, "vipmta_build_info{version=\"1.2.3\"} 1");
    ck_assert_line(t, "vipmta_uptime_seconds 12.500");
    ck_assert_line(t, "vipmta_smtp_sessions_total 5");
    ck_assert_line(t, "vipmta_messages_accepted_total 44");
    ck_assert_line(t, "vipmta_recipients_accepted_total 45");
    ck_assert_line(t, "vipmta_messages_rejected_total 1");
    ck_assert_line(t, "vipmta_queue_recipients 9");
    ck_assert_line(t, "vipmta_binding_connections_total{binding=\"default\",slot=\"0\"} 0");
    ck_assert_line(t, "vipmta_binding_connections_total{binding=\"vip\\\"1\",slot=\"1\"} 7");
    ck_assert_line(t, "vipmta_binding_connect_failures_total{binding=\"vip\\\"1\",slot=\"1\"} 1");
    ck_assert_line(t, "vipmta_binding_vetoes_total{binding=\"vip\\\"1\",slot=\"1\"} 2");
    ck_assert_line(t, "vipmta_binding_recipients_total{binding=\"vip\\\"1\",slot=\"1\",outcome=\"delivered\"} 40");
    ck_assert_line(t, "vipmta_binding_recipients_total{binding=\"vip\\\"1\",slot=\"1\",outcome=\"deferred\"} 3");
    ck_assert_line(t, "vipmta_binding_recipients_total{binding=\"vip\\\"1\",slot=\"1\",outcome=\"bounced\"} 1");
    ck_assert_line(t, "vipmta_binding_connections_open{binding=\"vip\\\"1\",slot=\"1\"} 2");
    ck_assert_line(t, "vipmta_postbind_vetoes_total{module=\"netacl\"} 2");
    ck_assert_line(t, "vipmta_domain_queued{domain=\"ok.example\",state=\"active\"} 3");
    ck_assert_line(t, "vipmta_domain_queued{domain=\"ok.example\",state=\"delayed\"} 4");
    ck_assert_line(t, "vipmta_domain_connections_open{domain=\"ok.example\"} 2");
    ck_assert_line(t, "vipmta_domain_recipients_total{domain=\"ok.example\",outcome=\"delivered\"} 40");
    ck_assert_line(t, "vipmta_domain_recipients_total{domain=\"ok.example\",outcome=\"deferred\"} 3");
    ck_assert_line(t, "vipmta_domain_recipients_total{domain=\"ok.example\",outcome=\"bounced\"} 1");
    ck_assert_line(t, "vipmta_domain_attempts_total{domain=\"ok.example\"} 44");
    /* a domain name from mail with \ " and a newline stays on one line, escaped */
    ck_assert_line(t, "vipmta_domain_connections_open{domain=\"bad\\\\dom\\\"ain\\nx\"} 0");
    ck_assert_line(t, "vipmta_metrics_domains_omitted 3");
    free(t);
}
END_TEST

START_TEST(test_histogram_cumulative)
{
    struct control_metrics_snapshot s;
    fill(&s);
    char *t = render(&s);
    ck_assert_line(t, "# TYPE vipmta_spool_sync_seconds histogram");
    ck_assert_line(t, "vipmta_spool_sync_seconds_bucket{le=\"0.0001\"} 1");
    ck_assert_line(t, "vipmta_spool_sync_seconds_bucket{le=\"0.00025\"} 1");
    ck_assert_line(t, "vipmta_spool_sync_seconds_bucket{le=\"0.0005\"} 1");
    ck_assert_line(t, "vipmta_spool_sync_seconds_bucket{le=\"0.001\"} 3");
    ck_assert_line(t, "vipmta_spool_sync_seconds_bucket{le=\"0.0025\"} 3");
    ck_assert_line(t, "vipmta_spool_sync_seconds_bucket{le=\"1\"} 3");
    ck_assert_line(t, "vipmta_spool_sync_seconds_bucket{le=\"+Inf\"} 4");
    ck_assert_line(t, "vipmta_spool_sync_seconds_count 4");
    ck_assert_line(t, "vipmta_spool_sync_seconds_sum 2.500300");
    /* buckets appear in increasing le, with non-decreasing counts */
    unsigned long long prev = 0;
    int buckets = 0;
    for (const char *p = strstr(t, "vipmta_spool_sync_seconds_bucket"); p;
         p = strstr(p + 1, "vipmta_spool_sync_seconds_bucket")) {
        const char *sp = strchr(p, ' ');
        ck_assert_ptr_nonnull(sp);
        unsigned long long v = strtoull(sp + 1, NULL, 10);
        ck_assert_uint_ge(v, prev);
        prev = v;
        buckets++;
    }
    ck_assert_int_eq(buckets, CONTROL_STATS_SYNC_BUCKETS);
    free(t);
}
END_TEST

/* Every sample line belongs to a family announced by HELP and TYPE before it,
 * and every family is announced once. */
START_TEST(test_help_and_type_for_every_family)
{
    struct control_metrics_snapshot s;
    fill(&s);
    char *t = render(&s);
    char help[128] = "", type[128] = "", kind[32] = "";
    int samples = 0, families = 0;
    char *save = NULL;
    for (char *line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[128];
        if (strncmp(line, "# HELP ", 7) == 0) {
            ck_assert_int_eq(sscanf(line + 7, "%127s", help), 1);
            ck_assert_msg(strlen(line) > 8 + strlen(help), "empty HELP for %s", help);
            families++;
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            ck_assert_int_eq(sscanf(line + 7, "%127s %31s", type, kind), 2);
            ck_assert_str_eq(type, help);
            ck_assert_msg(strcmp(kind, "counter") == 0 || strcmp(kind, "gauge") == 0 ||
                              strcmp(kind, "histogram") == 0, "bad type %s", kind);
            continue;
        }
        ck_assert_msg(line[0] != '#', "stray comment [%s]", line);
        size_t n = strcspn(line, "{ ");
        ck_assert_uint_lt(n, sizeof(name));
        memcpy(name, line, n);
        name[n] = '\0';
        size_t tl = strlen(type);
        int ok = strcmp(name, type) == 0;
        if (!ok && strcmp(kind, "histogram") == 0 && strncmp(name, type, tl) == 0)
            ok = !strcmp(name + tl, "_bucket") || !strcmp(name + tl, "_sum") ||
                 !strcmp(name + tl, "_count");
        ck_assert_msg(ok, "sample [%s] is not in the family %s announced before it", line, type);
        ck_assert_msg(strncmp(name, "vipmta_", 7) == 0, "no vipmta_ prefix: %s", line);
        if (strcmp(kind, "counter") == 0)
            ck_assert_msg(tl > 6 && strcmp(type + tl - 6, "_total") == 0,
                          "counter %s does not end in _total", type);
        samples++;
    }
    ck_assert_int_ge(families, 19);
    ck_assert_int_ge(samples, 50);
    free(t);
}
END_TEST

START_TEST(test_render_empty)
{
    struct control_metrics_snapshot s = {.version = "x", .sync_bounds_usec = control_stats_sync_bounds_usec};
    char *t = render(&s);
    ck_assert_line(t, "# TYPE vipmta_postbind_vetoes_total counter");
    ck_assert_line(t, "vipmta_spool_sync_seconds_bucket{le=\"+Inf\"} 0");
    ck_assert_line(t, "vipmta_spool_sync_seconds_count 0");
    ck_assert_line(t, "vipmta_metrics_domains_omitted 0");
    free(t);
}
END_TEST

START_TEST(test_select_domains)
{
    struct control_metrics_domain_sample d[4] = {
        {.domain = "c.test", .active = 1},
        {.domain = "a.test"},
        {.domain = "b.test", .delayed = 5},
        {.domain = "d.test", .active = 2, .delayed = 3},
    };
    ck_assert_uint_eq(control_metrics_select_domains(d, 4, 2), 2);
    ck_assert_str_eq(d[0].domain, "b.test"); /* 5 queued; d.test also 5, b < d */
    ck_assert_str_eq(d[1].domain, "d.test");
    ck_assert_str_eq(d[2].domain, "c.test");
    ck_assert_str_eq(d[3].domain, "a.test");
    ck_assert_uint_eq(control_metrics_select_domains(d, 4, 1000), 4);
    ck_assert_uint_eq(control_metrics_select_domains(d, 4, 0), 0);
    ck_assert_uint_eq(control_metrics_select_domains(NULL, 0, 10), 0);
}
END_TEST

/* A module instance as vipmta_module_counter_add sees one: its name and label. */
static struct vipmta_module_ctx *counter_module(const char *name, const char *label)
{
    static struct vipmta_module_ctx m;
    memset(&m, 0, sizeof(m));
    m.name = (char *)name;
    m.label = (char *)label;
    return &m;
}

START_TEST(test_module_counters)
{
    control_stats_counters_free();
    vipmta_module_ctx *m = counter_module("dkim", "dkim:bulk");
    const char *signed_rsa[] = {"outcome", "signed", "domain", "ex\"ample.test",
                                "algorithm", "rsa-sha256", NULL};
    const char *skipped[] = {"outcome", "skipped", NULL};
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_messages_total",
                                               "Messages by outcome.", signed_rsa, 2), 0);
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_messages_total",
                                               "Messages by outcome.", signed_rsa, 3), 0);
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_messages_total",
                                               "Messages by outcome.", skipped, 1), 0);
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_a_total", "A.", NULL, 7), 0);
    /* refused: another module's prefix, no _total, upper case, the module label, a bad value */
    const char *module_label[] = {"module", "x", NULL};
    const char *newline[] = {"k", "a\nb", NULL};
    const char *twice[] = {"k", "a", "k", "b", NULL};
    const char *five[] = {"a", "1", "b", "2", "c", "3", "d", "4", "e", "5", NULL};
    const char *const bad_names[] = {"vipmta_throttle_x_total", "vipmta_dkim_x", "vipmta_dkim_X_total",
                                     "dkim_x_total", "vipmta_dkim_total", NULL};
    for (size_t i = 0; bad_names[i]; i++) {
        errno = 0;
        ck_assert_int_eq(vipmta_module_counter_add(m, bad_names[i], "h", NULL, 1), -1);
        ck_assert_int_eq(errno, EINVAL);
    }
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_x_total", "h", module_label, 1), -1);
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_x_total", "h", newline, 1), -1);
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_x_total", "h", twice, 1), -1);
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_x_total", "h", five, 1), -1);
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_x_total", "", NULL, 1), -1);

    struct control_metrics_snapshot s = {.version = "x", .sync_bounds_usec = control_stats_sync_bounds_usec};
    struct control_stats_series *series = control_stats_counters_snapshot(&s.series_count, &s.series_dropped);
    ck_assert_ptr_nonnull(series);
    ck_assert_uint_eq(s.series_count, 3);
    ck_assert_str_eq(series[0].name, "vipmta_dkim_a_total"); /* sorted by name */
    s.series = series;
    char *t = render(&s);
    ck_assert_line(t, "# TYPE vipmta_dkim_messages_total counter");
    ck_assert_line(t, "# HELP vipmta_dkim_messages_total Messages by outcome.");
    ck_assert_line(t, "vipmta_dkim_messages_total{module=\"dkim:bulk\",outcome=\"signed\",domain=\"ex\\\"ample.test\",algorithm=\"rsa-sha256\"} 5");
    ck_assert_line(t, "vipmta_dkim_messages_total{module=\"dkim:bulk\",outcome=\"skipped\"} 1");
    ck_assert_line(t, "vipmta_dkim_a_total{module=\"dkim:bulk\"} 7");
    ck_assert_line(t, "vipmta_module_series_dropped_total 0");
    /* one family however many series */
    ck_assert_ptr_null(strstr(strstr(t, "# TYPE vipmta_dkim_messages_total") + 1,
                              "# TYPE vipmta_dkim_messages_total"));
    free(t);
    free(series);

    /* the table is bounded: past it adds fail with ENOSPC and are counted */
    char value[32];
    const char *labels[] = {"n", value, NULL};
    for (int i = 0; i < VIPMTA_METRICS_SERIES_MAX; i++) {
        snprintf(value, sizeof(value), "%d", i);
        vipmta_module_counter_add(m, "vipmta_dkim_many_total", "Many.", labels, 1);
    }
    errno = 0;
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_more_total", "More.", NULL, 1), -1);
    ck_assert_int_eq(errno, ENOSPC);
    ck_assert_int_eq(vipmta_module_counter_add(m, "vipmta_dkim_messages_total", "Messages by outcome.",
                                               skipped, 1), 0); /* an existing one still counts */
    series = control_stats_counters_snapshot(&s.series_count, &s.series_dropped);
    ck_assert_uint_eq(s.series_count, VIPMTA_METRICS_SERIES_MAX);
    ck_assert_uint_ge(s.series_dropped, 1);
    free(series);
    control_stats_counters_free();
}
END_TEST

static Suite *control_metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("render");
    tcase_add_test(tc, test_label_escaping);
    tcase_add_test(tc, test_render_values_and_escaping);
    tcase_add_test(tc, test_histogram_cumulative);
    tcase_add_test(tc, test_help_and_type_for_every_family);
    tcase_add_test(tc, test_render_empty);
    tcase_add_test(tc, test_select_domains);
    tcase_add_test(tc, test_module_counters);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(control_metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
