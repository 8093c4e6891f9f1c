/* ecdict.h: Momentum's string dictionary (ECDict), the value of ECCFGTYPE_ECDICT options. */
#ifndef VIPMTA_MOMENTUM_ECDICT_H
#define VIPMTA_MOMENTUM_ECDICT_H

#ifdef __cplusplus
extern "C" {
#endif

/* An ECDict is a handle (Momentum: "a typedef of an ec_hash_table"), passed
 * by value. Keys and values are strings, copied in; the pointers handed out
 * belong to the dict and stay valid until the entry goes. Not thread-safe. */
typedef struct _ec_hash_table ec_hash_table;
typedef ec_hash_table *ECDict;
typedef struct ec_hash_iter {
    void *p2;
    int p1;
} ECDict_Iterator;

ECDict dict_blank(void);
void dict_drop(ECDict a);
void dict_add_key_value(ECDict a, const char *key, const char *val); /* replaces */
int dict_key_exists(ECDict a, const char *b);                        /* 1 / 0 */
int dict_key_exists_and_fetch(ECDict a, const char *key, const char **value);
int dict_key_delete(ECDict a, const char *b);                        /* 1 ok / 0 */
/* Walks the pairs in insertion order:
 *   ECDict_Iterator it = dict_iter(d); const char *k, *v;
 *   while (dict_next(d, &it, &k, &v)) ...                                   */
ECDict_Iterator dict_iter(ECDict a);
int dict_next(ECDict a, ECDict_Iterator *i, const char **key, const char **val);

#ifdef __cplusplus
}
#endif
#endif
