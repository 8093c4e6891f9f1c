/* control_metrics_render.c: the Prometheus text exposition of a metrics snapshot (pure: no daemon state). */
#include "control_metrics_render.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

void control_metrics_write_label_value(FILE *f, const char *v)
{
    for (const char *p = v ? v : ""; *p; p++) {
        if (*p == '\\')
            fputs("\\\\", f);
        else if (*p == '"')
            fputs("\\\"", f);
        else if (*p == '\n')
            fputs("\\n", f);
        else
            fputc(*p, f);
    }
}

static int control_metrics_domain_order(const void *a, const void *b)
{
    const struct control_metrics_domain_sample *x = a, *y = b;
    uint64_t qx = (uint64_t)x->active + x->delayed, qy = (uint64_t)y->active + y->delayed;
    if (qx != qy)
        return qx > qy ? -1 : 1;
    return strcmp(x->domain ? x->domain : "", y->domain ? y->domain : "");
}

size_t control_metrics_select_domains(struct control_metrics_domain_sample *d, size_t count, size_t max)
{
    if (count > 1)
        qsort(d, count, sizeof(*d), control_metrics_domain_order);
    return count < max ? count : max;
}

/* # HELP and # TYPE of one family. */
static void control_metrics_family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one unlabelled sample: its # HELP, # TYPE and value. */
static void control_metrics_single(FILE *f, const char *name, const char *type, const char *help,
                                   uint64_t value)
{
    control_metrics_family(f, name, type, help);
    fprintf(f, "%s %" PRIu64 "\n", name, value);
}

static void control_metrics_binding_labels(FILE *f, const struct control_metrics_binding_sample *b)
{
    fputs("binding=\"", f);
    control_metrics_write_label_value(f, b->name);
    fprintf(f, "\",slot=\"%d\"", b->slot);
}

static void control_metrics_domain_label(FILE *f, const struct control_metrics_domain_sample *d)
{
    fputs("domain=\"", f);
    control_metrics_write_label_value(f, d->domain);
    fputc('"', f);
}

/* One family with a value per binding, read by `get`. */
static void control_metrics_per_binding(FILE *f, const struct control_metrics_snapshot *s, const char *name,
                                const char *type, const char *help,
                                uint64_t (*get)(const struct control_metrics_binding_sample *b))
{
    control_metrics_family(f, name, type, help);
    for (size_t i = 0; i < s->binding_count; i++) {
        fprintf(f, "%s{", name);
        control_metrics_binding_labels(f, &s->bindings[i]);
        fprintf(f, "} %" PRIu64 "\n", get(&s->bindings[i]));
    }
}

static uint64_t control_metrics_render_mb_connections(const struct control_metrics_binding_sample *b)
{
    return b->counters.connections;
}

static uint64_t control_metrics_render_mb_connect_failures(const struct control_metrics_binding_sample *b)
{
    return b->counters.connect_failures;
}

static uint64_t control_metrics_render_mb_vetoes(const struct control_metrics_binding_sample *b)
{
    return b->counters.vetoes;
}

static uint64_t control_metrics_render_mb_moved_out(const struct control_metrics_binding_sample *b)
{
    return b->counters.moved_out;
}

static uint64_t control_metrics_render_mb_open(const struct control_metrics_binding_sample *b)
{
    return b->counters.open;
}

static uint64_t control_metrics_render_mb_suspended(const struct control_metrics_binding_sample *b)
{
    return b->suspended ? 1 : 0;
}

static void control_metrics_render_totals(FILE *f, const struct control_metrics_snapshot *s)
{
    control_metrics_family(f, "vipmta_build_info", "gauge", "The running vipmta's version (always 1).");
    fputs("vipmta_build_info{version=\"", f);
    control_metrics_write_label_value(f, s->version);
    fputs("\"} 1\n", f);
    control_metrics_family(f, "vipmta_uptime_seconds", "gauge", "Seconds since the daemon started.");
    fprintf(f, "vipmta_uptime_seconds %.3f\n", s->uptime_seconds);
    control_metrics_single(f, "vipmta_smtp_sessions_total", "counter",
                           "Inbound SMTP sessions accepted.",
                           s->totals.sessions);
    control_metrics_single(f, "vipmta_messages_accepted_total", "counter",
                           "Messages accepted (answered 250 after DATA, on disk).",
                           s->totals.messages_accepted);
    control_metrics_single(f, "vipmta_recipients_accepted_total", "counter",
                           "Recipients of the accepted messages.",
                           s->totals.recipients_accepted);
    control_metrics_single(f, "vipmta_messages_rejected_total", "counter",
                           "Messages whose DATA was answered with a 4xx or 5xx (size, spool error).",
                           s->totals.messages_rejected);
    control_metrics_single(f, "vipmta_queue_recipients", "gauge",
                           "Recipients in the queue (active and delayed, every domain).",
                           s->queue_recipients);
}

static void control_metrics_render_bindings(FILE *f, const struct control_metrics_snapshot *s)
{
    static const char *const outcomes[] = {"delivered", "deferred", "bounced"};

    control_metrics_per_binding(f, s, "vipmta_binding_connections_total", "counter",
                        "Outbound connections bound to the binding and handed to the post-bind "
                        "hooks.", control_metrics_render_mb_connections);
    control_metrics_per_binding(f, s, "vipmta_binding_connect_failures_total", "counter",
                        "Outbound sockets of the binding that failed before an SMTP session "
                        "(bind, connect).", control_metrics_render_mb_connect_failures);
    control_metrics_per_binding(f, s, "vipmta_binding_vetoes_total", "counter",
                        "Outbound connections of the binding vetoed by a post-bind hook.",
                        control_metrics_render_mb_vetoes);
    control_metrics_family(f, "vipmta_binding_vetoes_by_kind_total", "counter",
                   "Post-bind vetoes of the binding by what the module said (vipmta_veto).");
    for (size_t i = 0; i < s->binding_count; i++) {
        const struct control_stats_binding *c = &s->bindings[i].counters;
        uint64_t other = c->vetoes_permanent + c->vetoes_other_binding;
        const uint64_t v[] = {c->vetoes > other ? c->vetoes - other : 0, c->vetoes_permanent,
                              c->vetoes_other_binding};
        static const char *const kinds[] = {"transient", "permanent", "other_binding"};
        for (size_t k = 0; k < 3; k++) {
            fputs("vipmta_binding_vetoes_by_kind_total{", f);
            control_metrics_binding_labels(f, &s->bindings[i]);
            fprintf(f, ",kind=\"%s\"} %" PRIu64 "\n", kinds[k], v[k]);
        }
    }
    control_metrics_per_binding(f, s, "vipmta_binding_moved_out_total", "counter",
                        "Messages moved from the binding to another of their group after a "
                        "post-bind veto asked for it.", control_metrics_render_mb_moved_out);
    control_metrics_family(f, "vipmta_binding_recipients_total", "counter",
                   "Recipient delivery outcomes per binding (deferred counts attempts).");
    for (size_t i = 0; i < s->binding_count; i++) {
        const struct control_stats_binding *c = &s->bindings[i].counters;
        const uint64_t v[] = {c->delivered, c->deferred, c->bounced};
        for (size_t o = 0; o < 3; o++) {
            fputs("vipmta_binding_recipients_total{", f);
            control_metrics_binding_labels(f, &s->bindings[i]);
            fprintf(f, ",outcome=\"%s\"} %" PRIu64 "\n", outcomes[o], v[o]);
        }
    }
    control_metrics_per_binding(f, s, "vipmta_binding_connections_open", "gauge",
                        "Outbound connections of the binding open now.", control_metrics_render_mb_open);
    control_metrics_per_binding(f, s, "vipmta_binding_suspended", "gauge",
                        "1 when the binding's source address is missing on this host.",
                        control_metrics_render_mb_suspended);
    control_metrics_family(f, "vipmta_postbind_vetoes_total", "counter",
                   "Outbound connections vetoed by a post-bind hook, by module.");
    for (size_t i = 0; i < s->module_count; i++) {
        fputs("vipmta_postbind_vetoes_total{module=\"", f);
        control_metrics_write_label_value(f, s->modules[i].module);
        fprintf(f, "\"} %" PRIu64 "\n", s->modules[i].vetoes);
    }
}

static void control_metrics_render_domains(FILE *f, const struct control_metrics_snapshot *s)
{
    control_metrics_family(f, "vipmta_domain_queued", "gauge",
                   "Recipients queued for the domain: active (ready now) or delayed (waiting "
                   "for their next attempt).");
    for (size_t i = 0; i < s->domain_count; i++) {
        const struct control_metrics_domain_sample *d = &s->domains[i];
        fputs("vipmta_domain_queued{", f);
        control_metrics_domain_label(f, d);
        fprintf(f, ",state=\"active\"} %" PRIu32 "\n", d->active);
        fputs("vipmta_domain_queued{", f);
        control_metrics_domain_label(f, d);
        fprintf(f, ",state=\"delayed\"} %" PRIu32 "\n", d->delayed);
    }
    control_metrics_family(f, "vipmta_domain_connections_open", "gauge",
                   "Outbound connections to the domain open now (all bindings).");
    for (size_t i = 0; i < s->domain_count; i++) {
        fputs("vipmta_domain_connections_open{", f);
        control_metrics_domain_label(f, &s->domains[i]);
        fprintf(f, "} %" PRIu32 "\n", s->domains[i].connections);
    }
    control_metrics_family(f, "vipmta_domain_recipients_total", "counter",
                   "Recipient delivery outcomes per domain (deferred counts attempts).");
    for (size_t i = 0; i < s->domain_count; i++) {
        const struct control_metrics_domain_sample *d = &s->domains[i];
        static const char *const outcomes[] = {"delivered", "deferred", "bounced"};
        const uint32_t v[] = {d->deliveries, d->transients, d->failures};
        for (size_t o = 0; o < 3; o++) {
            fputs("vipmta_domain_recipients_total{", f);
            control_metrics_domain_label(f, d);
            fprintf(f, ",outcome=\"%s\"} %" PRIu32 "\n", outcomes[o], v[o]);
        }
    }
    control_metrics_family(f, "vipmta_domain_attempts_total", "counter",
                   "Delivery attempts made to the domain.");
    for (size_t i = 0; i < s->domain_count; i++) {
        fputs("vipmta_domain_attempts_total{", f);
        control_metrics_domain_label(f, &s->domains[i]);
        fprintf(f, "} %" PRIu32 "\n", s->domains[i].attempts);
    }
    control_metrics_family(f, "vipmta_metrics_domains_omitted", "gauge",
                   "Known domains left out of the per-domain series by metrics.max_domains.");
    fprintf(f, "vipmta_metrics_domains_omitted %zu\n", s->domains_omitted);
}

static void control_metrics_render_sync(FILE *f, const struct control_metrics_snapshot *s)
{
    uint64_t cumulative = 0;

    control_metrics_family(f, "vipmta_spool_sync_seconds", "histogram",
                   "Duration of spool sync rounds (fsync or syncfs of the files written "
                   "since the last round).");
    for (size_t b = 0; b < CONTROL_STATS_SYNC_BUCKETS; b++) {
        cumulative += s->sync.buckets[b];
        if (b < CONTROL_STATS_SYNC_BUCKETS - 1)
            fprintf(f, "vipmta_spool_sync_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
                    (double)s->sync_bounds_usec[b] / 1e6, cumulative);
        else
            fprintf(f, "vipmta_spool_sync_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n",
                    cumulative);
    }
    fprintf(f, "vipmta_spool_sync_seconds_sum %.6f\n", (double)s->sync.sum_usec / 1e6);
    fprintf(f, "vipmta_spool_sync_seconds_count %" PRIu64 "\n", cumulative);
}

static void control_metrics_render_spool_memory(FILE *f, const struct control_metrics_snapshot *s)
{
    const struct spool_memory_stats *m = &s->spool_memory;
    control_metrics_single(f, "vipmta_spool_memory_bodies", "gauge",
                           "Bodies of queued messages kept in memory for their delivery (spool_memory).",
                           m->bodies);
    control_metrics_single(f, "vipmta_spool_memory_bytes", "gauge",
                           "Body bytes held in memory (kept bodies and messages being received).",
                           m->bytes);
    control_metrics_single(f, "vipmta_spool_memory_limit_bytes", "gauge",
                           "The bound of body bytes held in memory (spool_memory).",
                           m->limit);
    control_metrics_single(f, "vipmta_spool_memory_kept_total", "counter",
                           "Bodies kept in memory from acceptance to delivery.",
                           m->kept);
    control_metrics_single(f, "vipmta_spool_memory_spilled_total", "counter",
                           "Bodies written to their file as they arrived because of the memory bound.",
                           m->spilled);
    control_metrics_family(f, "vipmta_spool_body_reads_total", "counter",
                   "Bodies read for a delivery or a DSN, by where they were read from.");
    fprintf(f, "vipmta_spool_body_reads_total{from=\"memory\"} %" PRIu64 "\n", m->reads_memory);
    fprintf(f, "vipmta_spool_body_reads_total{from=\"file\"} %" PRIu64 "\n", m->reads_file);
}

static void control_metrics_render_tls(FILE *f, const struct control_metrics_snapshot *s)
{
    static const char *const dirs[] = {"inbound", "outbound"};
    control_metrics_family(f, "vipmta_tls_connections_total", "counter",
                           "SMTP connections by direction, TLS or clear text, TLS version, cipher "
                           "and whether the peer certificate was verified.");
    for (size_t i = 0; i < s->tls_row_count; i++) {
        const struct tls_stats_row *r = &s->tls_rows[i];
        fprintf(f, "vipmta_tls_connections_total{direction=\"%s\",tls=\"%s\",version=\"",
                dirs[r->dir == TLS_STATS_OUTBOUND], r->active ? "true" : "false");
        control_metrics_write_label_value(f, r->version);
        fputs("\",cipher=\"", f);
        control_metrics_write_label_value(f, r->cipher);
        fprintf(f, "\",verified=\"%s\"} %" PRIu64 "\n", r->verified ? "true" : "false", r->count);
    }
    control_metrics_family(f, "vipmta_tls_handshake_failures_total", "counter",
                           "TLS handshakes that failed, by direction.");
    for (int d = 0; d < 2; d++)
        fprintf(f, "vipmta_tls_handshake_failures_total{direction=\"%s\"} %" PRIu64 "\n", dirs[d],
                s->tls.handshake_failures[d]);
    control_metrics_family(f, "vipmta_smtp_auth_total", "counter",
                           "SMTP AUTH attempts by outcome.");
    fprintf(f, "vipmta_smtp_auth_total{outcome=\"success\"} %" PRIu64 "\n", s->tls.auth_success);
    fprintf(f, "vipmta_smtp_auth_total{outcome=\"failure\"} %" PRIu64 "\n", s->tls.auth_failure);
}

/* The counters modules add: one family per name, its series in order. */
static void control_metrics_render_module_counters(FILE *f, const struct control_metrics_snapshot *s)
{
    control_metrics_family(f, "vipmta_module_series_dropped_total", "counter",
                           "Counter adds by modules refused because the daemon already keeps "
                           "the most series it will.");
    fprintf(f, "vipmta_module_series_dropped_total %" PRIu64 "\n", s->series_dropped);
    for (size_t i = 0; i < s->series_count; i++) {
        const struct control_stats_series *c = &s->series[i];
        if (i == 0 || strcmp(c->name, s->series[i - 1].name) != 0)
            control_metrics_family(f, c->name, "counter", c->help);
        fprintf(f, "%s{module=\"", c->name);
        control_metrics_write_label_value(f, c->module);
        fputc('"', f);
        for (size_t l = 0; l < c->nlabels; l++) {
            fprintf(f, ",%s=\"", c->keys[l]);
            control_metrics_write_label_value(f, c->values[l]);
            fputc('"', f);
        }
        fprintf(f, "} %" PRIu64 "\n", c->value);
    }
}

int control_metrics_render(const struct control_metrics_snapshot *s, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = open_memstream(out, len);
    if (!f)
        return -1;
    control_metrics_render_totals(f, s);
    control_metrics_render_bindings(f, s);
    control_metrics_render_domains(f, s);
    control_metrics_render_sync(f, s);
    control_metrics_render_spool_memory(f, s);
    control_metrics_render_tls(f, s);
    control_metrics_render_module_counters(f, s);
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        free(*out);
        *out = NULL;
        *len = 0;
        return -1;
    }
    return 0;
}
