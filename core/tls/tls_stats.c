/* tls_stats.c: counters of connections by TLS version, cipher and verification, handshake failures and AUTH outcomes (loop thread). */
#include "tls.h"

#include <stdio.h>
#include <string.h>

/* Distinct (direction, version, cipher, verified) rows kept; more count as "other". */
#define TLS_STATS_ROWS 64

struct tls_stats_slot {
    enum tls_stats_direction dir;
    int active, verified;
    char version[16];
    char cipher[64];
    uint64_t count;
};

static struct tls_stats_slot rows[TLS_STATS_ROWS];
static size_t row_count;
static struct tls_stats_totals totals;

void tls_stats_connection(enum tls_stats_direction dir, const struct tls_info *info)
{
    int active = info && info->active;
    const char *version = active ? info->version : "";
    const char *cipher = active ? info->cipher : "";
    int verified = active && info->verified;
    for (size_t i = 0; i < row_count; i++) {
        struct tls_stats_slot *r = &rows[i];
        if (r->dir == dir && r->active == active && r->verified == verified &&
            strcmp(r->version, version) == 0 && strcmp(r->cipher, cipher) == 0) {
            r->count++;
            return;
        }
    }
    struct tls_stats_slot *r = &rows[row_count < TLS_STATS_ROWS ? row_count : TLS_STATS_ROWS - 1];
    if (row_count < TLS_STATS_ROWS) {
        row_count++;
        r->dir = dir;
        r->active = active;
        r->verified = verified;
        snprintf(r->version, sizeof(r->version), "%s", version);
        snprintf(r->cipher, sizeof(r->cipher), "%s", cipher);
    } else {
        snprintf(r->version, sizeof(r->version), "other");
        snprintf(r->cipher, sizeof(r->cipher), "other");
    }
    r->count++;
}

void tls_stats_handshake_failed(enum tls_stats_direction dir)
{
    totals.handshake_failures[dir == TLS_STATS_OUTBOUND]++;
}

void tls_stats_auth(int success)
{
    if (success)
        totals.auth_success++;
    else
        totals.auth_failure++;
}

void tls_stats_foreach(void (*fn)(const struct tls_stats_row *row, void *arg), void *arg)
{
    for (size_t i = 0; i < row_count; i++) {
        struct tls_stats_row row = {rows[i].dir, rows[i].active, rows[i].version, rows[i].cipher,
                                    rows[i].verified, rows[i].count};
        fn(&row, arg);
    }
}

void tls_stats_totals(struct tls_stats_totals *out)
{
    *out = totals;
}
