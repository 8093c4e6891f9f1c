/* plugin_metrics.c: vipmta_module_counter_add, the counters modules show on the metrics endpoint: names and labels checked, then counted per instance. */
#include "plugin_internal.h"
#include "control/control_stats.h"
#include "vipmta_metrics.h"

#include <errno.h>
#include <string.h>

#define PLUGIN_METRICS_NAME_MAX 128
#define PLUGIN_METRICS_HELP_MAX 512
#define PLUGIN_METRICS_VALUE_MAX 256

/* [a-z_][a-z0-9_]* of at most `max` characters. */
static int plugin_metrics_word(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

/* "vipmta_MODULE_..._total": a module's families never meet another's, nor
 * the core's. */
static int plugin_metrics_name_ok(const struct vipmta_module_ctx *m, const char *name)
{
    size_t n = name ? strlen(name) : 0, mn = strlen(m->name);
    return plugin_metrics_word(name, PLUGIN_METRICS_NAME_MAX) && n > 7 + mn + 1 + 6 &&
           strncmp(name, "vipmta_", 7) == 0 && strncmp(name + 7, m->name, mn) == 0 &&
           name[7 + mn] == '_' && strcmp(name + n - 6, "_total") == 0;
}

/* One line of printable text (UTF-8 octets pass). */
static int plugin_metrics_text_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (!s || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

int vipmta_module_counter_add(vipmta_module_ctx *m, const char *name, const char *help,
                              const char *const *labels, uint64_t n)
{
    const char *keys[VIPMTA_METRICS_LABELS_MAX], *values[VIPMTA_METRICS_LABELS_MAX];
    size_t nlabels = 0;
    if (!m || !plugin_metrics_name_ok(m, name) || !help || !*help ||
        !plugin_metrics_text_ok(help, PLUGIN_METRICS_HELP_MAX)) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; labels && labels[2 * i]; i++) {
        const char *k = labels[2 * i], *v = labels[2 * i + 1];
        if (nlabels == VIPMTA_METRICS_LABELS_MAX || !plugin_metrics_word(k, 64) ||
            strcmp(k, "module") == 0 || !plugin_metrics_text_ok(v, PLUGIN_METRICS_VALUE_MAX)) {
            errno = EINVAL;
            return -1;
        }
        for (size_t j = 0; j < nlabels; j++)
            if (strcmp(keys[j], k) == 0) {
                errno = EINVAL;
                return -1;
            }
        keys[nlabels] = k;
        values[nlabels++] = v;
    }
    return control_stats_counter_add(m->label, name, help, nlabels, keys, values, n);
}
