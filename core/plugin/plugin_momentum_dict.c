/* plugin_momentum_dict.c: Momentum's ECDict: a small string dictionary keeping insertion order. */
#include <stdlib.h>
#include <string.h>

#include "ecdict.h"

struct plugin_dict_pair {
    char *key;
    char *value;
};

struct _ec_hash_table {
    struct plugin_dict_pair *pairs;
    size_t count, capacity;
};

ECDict dict_blank(void)
{
    return calloc(1, sizeof(struct _ec_hash_table));
}

void dict_drop(ECDict a)
{
    while (a && a->count) /* from the end: nothing moves */
        dict_key_delete(a, a->pairs[a->count - 1].key);
    if (a)
        free(a->pairs);
    free(a);
}

static struct plugin_dict_pair *plugin_dict_find(ECDict a, const char *key)
{
    for (size_t i = 0; a && key && i < a->count; i++)
        if (strcmp(a->pairs[i].key, key) == 0)
            return &a->pairs[i];
    return NULL;
}

void dict_add_key_value(ECDict a, const char *key, const char *val)
{
    if (!a || !key)
        return;
    char *v = strdup(val ? val : "");
    if (!v)
        return;
    struct plugin_dict_pair *p = plugin_dict_find(a, key);
    if (p) {
        free(p->value);
        p->value = v;
        return;
    }
    if (a->count == a->capacity) {
        size_t cap = a->capacity ? a->capacity * 2 : 8;
        struct plugin_dict_pair *grown = realloc(a->pairs, cap * sizeof(*grown));
        if (!grown) {
            free(v);
            return;
        }
        a->pairs = grown;
        a->capacity = cap;
    }
    if (!(a->pairs[a->count].key = strdup(key))) {
        free(v);
        return;
    }
    a->pairs[a->count++].value = v;
}

int dict_key_exists(ECDict a, const char *b)
{
    return plugin_dict_find(a, b) != NULL;
}

int dict_key_exists_and_fetch(ECDict a, const char *key, const char **value)
{
    const struct plugin_dict_pair *p = plugin_dict_find(a, key);
    if (!p)
        return 0;
    if (value)
        *value = p->value;
    return 1;
}

int dict_key_delete(ECDict a, const char *b)
{
    struct plugin_dict_pair *p = plugin_dict_find(a, b);
    if (!p)
        return 0;
    free(p->key);
    free(p->value);
    size_t i = (size_t)(p - a->pairs);
    memmove(a->pairs + i, a->pairs + i + 1, (a->count - i - 1) * sizeof(*a->pairs));
    a->count--;
    return 1;
}

ECDict_Iterator dict_iter(ECDict a)
{
    ECDict_Iterator it = {a, 0};
    return it;
}

int dict_next(ECDict a, ECDict_Iterator *i, const char **key, const char **val)
{
    if (!a || !i || i->p1 < 0 || (size_t)i->p1 >= a->count)
        return 0;
    if (key)
        *key = a->pairs[i->p1].key;
    if (val)
        *val = a->pairs[i->p1].value;
    i->p1++;
    return 1;
}
