/* binding_table.c: the MultiVIP binding table built from config, lookups, and binding groups. */
#include "binding_table.h"
#include "log/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <stdlib.h>
#include <string.h>

struct binding_group_member {
    ec_binding_slot slot;
    int weight;
    int current; /* smooth weighted round-robin state */
};

struct binding_group_entry {
    char *name;
    struct binding_group_member *members;
    size_t member_count;
};

static vipmta_binding *table;
static int table_count;
static struct binding_group_entry *groups;
static size_t group_count;
/* the config the table was built from: names point into it (held) */
static struct vipmta_config *table_cfg;
/* names of absent bindings (binding_table_add_absent), owned here until
 * binding_table_free: both tables of a reload may point at them */
static char **absent_names;
static size_t absent_count;

int vipmta_binding_count(void)
{
    return table_count;
}

const vipmta_binding *vipmta_binding_by_slot(ec_binding_slot slot)
{
    if (slot < 0 || slot >= table_count)
        return NULL;
    return &table[slot];
}

const vipmta_binding *vipmta_binding_by_name(const char *name)
{
    if (!name)
        return NULL;
    for (int i = 0; i < table_count; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

ec_binding_slot config_get_binding_id_from_name(const char *name)
{
    const vipmta_binding *b = vipmta_binding_by_name(name);
    return b ? b->slot : EC_BINDING_SLOT_UNBOUND;
}

char *config_get_binding_name_from_id(ec_binding_slot slot)
{
    const vipmta_binding *b = vipmta_binding_by_slot(slot);
    return b ? (char *)b->name : NULL; /* Momentum's type; the table's string */
}

static int binding_set_addresses(vipmta_binding *b, const struct config_binding *cb,
                                 struct config_errors *errs)
{
    int rc = 0;
    if (cb->address) {
        b->addr4.sin_family = AF_INET;
        if (inet_pton(AF_INET, cb->address, &b->addr4.sin_addr) == 1) {
            b->has_addr4 = 1;
        } else {
            config_errors_add(errs, "bindings.%s.address: \"%s\" is not an IPv4 address", cb->name,
                       cb->address);
            rc = -1;
        }
    }
    if (cb->address6) {
        b->addr6.sin6_family = AF_INET6;
        if (inet_pton(AF_INET6, cb->address6, &b->addr6.sin6_addr) == 1) {
            b->has_addr6 = 1;
        } else {
            config_errors_add(errs, "bindings.%s.address6: \"%s\" is not an IPv6 address", cb->name,
                       cb->address6);
            rc = -1;
        }
    }
    return rc;
}

static const char *binding_first_group(const struct vipmta_config *cfg, const char *name)
{
    for (size_t g = 0; g < cfg->binding_group_count; g++)
        for (size_t m = 0; m < cfg->binding_groups[g].member_count; m++)
            if (strcmp(cfg->binding_groups[g].members[m].binding, name) == 0)
                return cfg->binding_groups[g].name;
    return NULL;
}

/* The slot of binding `name` in tbl[0..count), or EC_BINDING_SLOT_UNBOUND. */
static ec_binding_slot binding_slot_in(const vipmta_binding *tbl, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp(tbl[i].name, name) == 0)
            return tbl[i].slot;
    return EC_BINDING_SLOT_UNBOUND;
}

/* Builds the binding groups of `cfg` against the table tbl[0..count) into
 * *out (*out_count entries; the caller frees them, also after an error).
 * 0, or -1 with errors appended (unknown member, out of memory). */
static int binding_groups_build(const struct vipmta_config *cfg, const vipmta_binding *tbl,
                                int count, struct binding_group_entry **out, size_t *out_count,
                                struct config_errors *errs)
{
    int rc = 0;

    *out_count = 0;
    *out = calloc(cfg->binding_group_count ? cfg->binding_group_count : 1, sizeof(**out));
    if (!*out) {
        config_errors_add(errs, "out of memory building the binding groups");
        return -1;
    }
    for (size_t g = 0; g < cfg->binding_group_count; g++) {
        const struct config_binding_group *cg = &cfg->binding_groups[g];
        struct binding_group_entry *ge = &(*out)[(*out_count)++];
        ge->name = cg->name;
        ge->members = calloc(cg->member_count ? cg->member_count : 1, sizeof(*ge->members));
        if (!ge->members) {
            config_errors_add(errs, "out of memory building binding group %s", cg->name);
            return -1;
        }
        for (size_t m = 0; m < cg->member_count; m++) {
            ec_binding_slot slot = binding_slot_in(tbl, count, cg->members[m].binding);
            if (slot == EC_BINDING_SLOT_UNBOUND) {
                config_errors_add(errs, "binding_groups.%s[%zu]: unknown binding \"%s\"", cg->name, m,
                           cg->members[m].binding);
                rc = -1;
                continue;
            }
            struct binding_group_member *gm = &ge->members[ge->member_count++];
            gm->slot = slot;
            gm->weight = cg->members[m].weight ? (int)cg->members[m].weight : 1;
        }
    }
    return rc;
}

int binding_table_build(struct vipmta_config *cfg, struct config_errors *errs)
{
    int rc = 0;

    binding_table_free();
    table_cfg = config_ref(cfg);
    table = calloc(cfg->binding_count + 1, sizeof(*table));
    if (!table) {
        config_errors_add(errs, "out of memory building the binding table");
        return -1;
    }
    table[0].slot = 0;
    table[0].name = "default";
    table[0].ehlo = cfg->hostname;
    table_count = 1;
    for (size_t i = 0; i < cfg->binding_count; i++) {
        const struct config_binding *cb = &cfg->bindings[i];
        vipmta_binding *b;
        if (strcmp(cb->name, "default") == 0) {
            b = &table[0];
        } else {
            b = &table[table_count];
            b->slot = table_count++;
            b->name = cb->name;
        }
        b->ehlo = cb->ehlo ? cb->ehlo : cfg->hostname;
        if (binding_set_addresses(b, cb, errs) != 0)
            rc = -1;
    }
    for (int i = 0; i < table_count; i++)
        table[i].group = binding_first_group(cfg, table[i].name);

    if (binding_groups_build(cfg, table, table_count, &groups, &group_count, errs) != 0)
        rc = -1;
    return rc;
}

/* Non-zero when `addr` (of `family`) is configured on a local interface. */
static int binding_address_is_local(int family, const void *addr, const struct ifaddrs *ifs)
{
    if (family == AF_INET && ((const unsigned char *)addr)[0] == 127)
        return 1; /* all of 127.0.0.0/8 is local on Linux */
    for (const struct ifaddrs *ifa = ifs; ifa; ifa = ifa->ifa_next) {
        if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != family)
            continue;
        if (family == AF_INET &&
            memcmp(&((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr, addr, 4) == 0)
            return 1;
        if (family == AF_INET6 &&
            memcmp(&((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, addr, 16) == 0)
            return 1;
    }
    return 0;
}

/* What happens to the mail of binding `b` while it cannot be used, for the
 * warnings: "its mail waits" and where group mail goes. */
static void binding_waiting_note(const vipmta_binding *b, char *out, size_t size)
{
    char others[256] = "";
    size_t len = 0;
    for (size_t g = 0; g < group_count; g++) {
        for (size_t m = 0; m < groups[g].member_count; m++) {
            if (groups[g].members[m].slot != b->slot)
                continue;
            for (size_t o = 0; o < groups[g].member_count; o++) {
                const vipmta_binding *ob = &table[groups[g].members[o].slot];
                if (ob->slot == b->slot || ob->suspended || ob->absent || len >= sizeof(others) - 1)
                    continue;
                len += (size_t)snprintf(others + len, sizeof(others) - len, "%s%s (group %s)",
                                        len ? ", " : "", ob->name, groups[g].name);
            }
        }
    }
    if (others[0])
        snprintf(out, size, "mail pinned to it (by a binding rule, X-Binding or a restart) waits "
                 "for it; mail chosen from its groups moves to %s", others);
    else
        snprintf(out, size, "its mail waits for it (%s)",
                 b->group ? "no other binding of its group is usable"
                          : "it is in no binding group");
}

int binding_table_check_addresses(struct config_errors *warnings)
{
    struct ifaddrs *ifs = NULL;
    int suspended = 0;

    if (getifaddrs(&ifs) != 0) {
        config_errors_add(warnings, "cannot list local addresses (%s): binding addresses not checked",
                          strerror(errno));
        return 0;
    }
    for (int i = 0; i < table_count; i++) {
        vipmta_binding *b = &table[i];
        char text[INET6_ADDRSTRLEN];
        if (b->absent)
            continue; /* suspended for good */
        if (b->has_addr4 && !binding_address_is_local(AF_INET, &b->addr4.sin_addr, ifs)) {
            inet_ntop(AF_INET, &b->addr4.sin_addr, text, sizeof(text));
            b->suspended = 1;
        } else if (b->has_addr6 && !binding_address_is_local(AF_INET6, &b->addr6.sin6_addr, ifs)) {
            inet_ntop(AF_INET6, &b->addr6.sin6_addr, text, sizeof(text));
            b->suspended = 1;
        } else {
            b->suspended = 0;
            continue;
        }
        suspended++;
    }
    for (int i = 0; i < table_count; i++) {
        vipmta_binding *b = &table[i];
        char text[INET6_ADDRSTRLEN], note[400];
        if (!b->suspended || b->absent)
            continue;
        if (b->has_addr4 && !binding_address_is_local(AF_INET, &b->addr4.sin_addr, ifs))
            inet_ntop(AF_INET, &b->addr4.sin_addr, text, sizeof(text));
        else
            inet_ntop(AF_INET6, &b->addr6.sin6_addr, text, sizeof(text));
        binding_waiting_note(b, note, sizeof(note));
        config_errors_add(warnings, "binding \"%s\" (slot %d) suspended: source address %s is not "
                          "configured on this host; no mail leaves from it: %s (add the address "
                          "to the host, or fix the binding)", b->name, b->slot, text, note);
    }
    freeifaddrs(ifs);
    return suspended;
}

void binding_table_describe_absent(ec_binding_slot slot, uint64_t waiting,
                                   struct config_errors *warnings)
{
    const vipmta_binding *b = vipmta_binding_by_slot(slot);
    if (!b || !b->absent)
        return;
    char note[400];
    binding_waiting_note(b, note, sizeof(note));
    config_errors_add(warnings, "binding \"%s\" (slot %d) is not in the configuration, but %llu "
                      "queued recipient(s) were assigned to it: no mail leaves from it: %s (put "
                      "the binding back, or bounce or delete that mail with vipmtactl queue)",
                      b->name, b->slot, (unsigned long long)waiting, note);
}

void binding_table_free(void)
{
    for (size_t g = 0; g < group_count; g++)
        free(groups[g].members);
    free(groups);
    free(table);
    config_release(table_cfg);
    for (size_t i = 0; i < absent_count; i++)
        free(absent_names[i]);
    free(absent_names);
    absent_names = NULL;
    absent_count = 0;
    groups = NULL;
    table = NULL;
    table_cfg = NULL;
    group_count = 0;
    table_count = 0;
}

int binding_available(ec_binding_slot slot)
{
    const vipmta_binding *b = vipmta_binding_by_slot(slot);
    return b && !b->suspended && !b->absent;
}

ec_binding_slot binding_table_add_absent(const char *name)
{
    if (!name || !*name || vipmta_binding_by_name(name))
        return EC_BINDING_SLOT_UNBOUND;
    char **names = realloc(absent_names, (absent_count + 1) * sizeof(*names));
    if (!names)
        return EC_BINDING_SLOT_UNBOUND;
    absent_names = names;
    vipmta_binding *grown = realloc(table, ((size_t)table_count + 1) * sizeof(*grown));
    char *copy = strdup(name);
    if (!grown || !copy) {
        if (grown)
            table = grown;
        free(copy);
        return EC_BINDING_SLOT_UNBOUND;
    }
    table = grown;
    absent_names[absent_count++] = copy;
    vipmta_binding *b = &table[table_count];
    memset(b, 0, sizeof(*b));
    b->slot = table_count++;
    b->name = copy;
    b->ehlo = table[0].ehlo;
    b->suspended = 1;
    b->absent = 1;
    return b->slot;
}

static struct binding_group_entry *binding_group_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t g = 0; g < group_count; g++)
        if (strcmp(groups[g].name, name) == 0)
            return &groups[g];
    return NULL;
}

int binding_group_exists(const char *group)
{
    return binding_group_find(group) != NULL;
}

/* Smooth weighted round-robin: each pick adds every weight to its member's
 * counter, picks the largest, and subtracts the total from it. Equal weights
 * give plain round-robin. */
ec_binding_slot binding_group_choose(const char *group)
{
    struct binding_group_entry *ge = binding_group_find(group);
    if (!ge)
        return EC_BINDING_SLOT_UNBOUND;
    struct binding_group_member *best = NULL;
    int total = 0;
    for (size_t m = 0; m < ge->member_count; m++) {
        struct binding_group_member *gm = &ge->members[m];
        if (table[gm->slot].suspended || table[gm->slot].absent)
            continue;
        gm->current += gm->weight;
        total += gm->weight;
        if (!best || gm->current > best->current)
            best = gm;
    }
    if (!best)
        return EC_BINDING_SLOT_UNBOUND;
    best->current -= total;
    return best->slot;
}

ec_binding_slot binding_group_choose_any(const char *group)
{
    ec_binding_slot slot = binding_group_choose(group);
    if (slot != EC_BINDING_SLOT_UNBOUND)
        return slot;
    struct binding_group_entry *ge = binding_group_find(group);
    return ge && ge->member_count ? ge->members[0].slot : EC_BINDING_SLOT_UNBOUND;
}

/* ---- reload: a new table with stable slots, swapped in whole ---- */

struct binding_table_saved {
    vipmta_binding *table;
    int table_count;
    struct binding_group_entry *groups;
    size_t group_count;
    struct vipmta_config *cfg;
};

static void binding_saved_free(struct binding_table_saved *s)
{
    if (!s)
        return;
    for (size_t g = 0; g < s->group_count; g++)
        free(s->groups[g].members);
    free(s->groups);
    free(s->table);
    config_release(s->cfg);
    free(s);
}

static const struct config_binding *binding_config_find(const struct vipmta_config *cfg,
                                                        const char *name)
{
    for (size_t i = 0; i < cfg->binding_count; i++)
        if (strcmp(cfg->bindings[i].name, name) == 0)
            return &cfg->bindings[i];
    return NULL;
}

static ec_binding_slot binding_saved_slot(const struct binding_table_saved *s, const char *name)
{
    return binding_slot_in(s->table, s->table_count, name);
}

struct binding_table_saved *binding_table_prepare(struct vipmta_config *cfg,
                                                  struct config_errors *errs)
{
    struct binding_table_saved *s = calloc(1, sizeof(*s));
    int rc = 0;

    if (!s || !(s->table = calloc((size_t)table_count + cfg->binding_count + 1,
                                  sizeof(*s->table)))) {
        free(s);
        config_errors_add(errs, "out of memory building the new binding table");
        return NULL;
    }
    s->cfg = config_ref(cfg);
    /* every slot in use keeps its number: queued mail is filed under it */
    for (int i = 0; i < table_count; i++) {
        const struct config_binding *cb =
            i == 0 ? NULL : binding_config_find(cfg, table[i].name);
        if (i > 0 && !cb && table[i].absent) {
            /* still absent: kept for the mail that waits on it */
            s->table[i] = table[i];
            s->table[i].ehlo = cfg->hostname;
            continue;
        }
        if (i > 0 && !cb) {
            config_errors_add(errs, "bindings: \"%s\" (slot %d) is missing from the new configuration: "
                       "a binding cannot be removed or renamed while running (mail queued on it "
                       "needs it); put it back, or restart vipmta to remove it",
                       table[i].name, table[i].slot);
            rc = -1;
        }
        vipmta_binding *b = &s->table[i];
        b->slot = i;
        b->name = i == 0 ? "default" : cb ? cb->name : table[i].name;
        b->suspended = table[i].absent ? 0 : table[i].suspended; /* back in the config: checked anew */
    }
    s->table_count = table_count;
    for (size_t i = 0; i < cfg->binding_count; i++) {
        const struct config_binding *cb = &cfg->bindings[i];
        if (strcmp(cb->name, "default") != 0 && binding_saved_slot(s, cb->name) < 0) {
            vipmta_binding *b = &s->table[s->table_count];
            b->slot = s->table_count++;
            b->name = cb->name;
        }
    }
    for (int i = 0; i < s->table_count; i++) {
        vipmta_binding *b = &s->table[i];
        if (b->absent)
            continue;
        const struct config_binding *cb = binding_config_find(cfg, b->name);
        b->ehlo = cb && cb->ehlo ? cb->ehlo : cfg->hostname;
        if (cb && binding_set_addresses(b, cb, errs) != 0)
            rc = -1;
        b->group = binding_first_group(cfg, b->name);
    }
    if (binding_groups_build(cfg, s->table, s->table_count, &s->groups, &s->group_count,
                             errs) != 0)
        rc = -1;
    if (rc != 0) {
        binding_saved_free(s);
        return NULL;
    }
    return s;
}

struct binding_table_saved *binding_table_swap(struct binding_table_saved *s)
{
    struct binding_table_saved old = {table, table_count, groups, group_count, table_cfg};
    table = s->table;
    table_count = s->table_count;
    groups = s->groups;
    group_count = s->group_count;
    table_cfg = s->cfg;
    *s = old;
    return s;
}

void binding_table_saved_free(struct binding_table_saved *s)
{
    binding_saved_free(s);
}
