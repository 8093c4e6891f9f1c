/* dkimmod_stats.c: the dkim module's counters: messages signed, skipped and failed per signing domain and algorithm, shared by the workers. */
#include "dkimmod.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Distinct (outcome, domain, algorithm) rows kept at most; later domains are
 * counted under DKIMMOD_STATS_OTHER. */
#define DKIMMOD_STATS_ROWS 1024
#define DKIMMOD_STATS_OTHER "_other"

struct stats_row {
    enum dkimmod_outcome outcome;
    int alg;
    uint64_t count;
    char domain[DKIMMOD_NAME_MAX + 1];
};

struct dkimmod_stats {
    pthread_mutex_t lock;
    struct stats_row *rows;
    size_t nrows;
};

const char *dkimmod_outcome_name(enum dkimmod_outcome outcome)
{
    static const char *const names[DKIMMOD_OUTCOMES] = {"signed", "skipped", "failed"};
    return (unsigned)outcome < DKIMMOD_OUTCOMES ? names[outcome] : "?";
}

struct dkimmod_stats *dkimmod_stats_new(void)
{
    struct dkimmod_stats *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->rows = calloc(DKIMMOD_STATS_ROWS, sizeof(*s->rows));
    if (!s->rows) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

void dkimmod_stats_free(struct dkimmod_stats *s)
{
    if (!s)
        return;
    pthread_mutex_destroy(&s->lock);
    free(s->rows);
    free(s);
}

static struct stats_row *find(struct dkimmod_stats *s, enum dkimmod_outcome outcome,
                              const char *domain, int alg)
{
    for (size_t i = 0; i < s->nrows; i++) {
        struct stats_row *r = &s->rows[i];
        if (r->outcome == outcome && r->alg == alg && strcmp(r->domain, domain) == 0)
            return r;
    }
    return NULL;
}

void dkimmod_stats_count(struct dkimmod_stats *s, enum dkimmod_outcome outcome,
                         const char *domain, int alg)
{
    if (!s)
        return;
    if (!domain || strlen(domain) > DKIMMOD_NAME_MAX)
        domain = "";
    pthread_mutex_lock(&s->lock);
    struct stats_row *r = find(s, outcome, domain, alg);
    /* the last rows are kept for "_other" (one per outcome and algorithm) */
    if (!r && s->nrows + DKIMMOD_OUTCOMES * (DKIMMOD_ALGS + 1) >= DKIMMOD_STATS_ROWS)
        r = find(s, outcome, domain = DKIMMOD_STATS_OTHER, alg);
    if (!r && s->nrows < DKIMMOD_STATS_ROWS) {
        r = &s->rows[s->nrows++];
        r->outcome = outcome;
        r->alg = alg;
        strcpy(r->domain, domain);
    }
    if (r)
        r->count++;
    pthread_mutex_unlock(&s->lock);
}

void dkimmod_stats_foreach(struct dkimmod_stats *s,
                           void (*fn)(void *arg, enum dkimmod_outcome outcome,
                                      const char *domain, int alg, uint64_t count),
                           void *arg)
{
    pthread_mutex_lock(&s->lock);
    for (size_t i = 0; i < s->nrows; i++)
        fn(arg, s->rows[i].outcome, s->rows[i].domain, s->rows[i].alg, s->rows[i].count);
    pthread_mutex_unlock(&s->lock);
}
