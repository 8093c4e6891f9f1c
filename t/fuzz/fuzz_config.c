/* fuzz_config.c: libFuzzer harness for the JSON config loader (config_load_string, config_free). */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_NAME "/fuzz/vipmta.json"

/* A broken promise of the loader's contract is a crash, so the fuzzer keeps it. */
static void require(int ok)
{
    if (!ok)
        abort();
}

/* Uses what a loaded config offers, so every pointer in it is touched. */
static void exercise(const struct vipmta_config *cfg)
{
    struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};

    require(cfg->hostname && cfg->spool_dir && cfg->spool_sync && cfg->log_level);
    require(cfg->domain_count >= 1 && strcmp(cfg->domains[0].name, "*") == 0);
    for (size_t i = 0; i < cfg->relay_from_count; i++) {
        config_cidr_match(&cfg->relay_from[i], (const struct sockaddr *)&v4);
        config_cidr_match(&cfg->relay_from[i], (const struct sockaddr *)&v6);
    }
    for (size_t i = 0; i < cfg->domain_count; i++) {
        const struct config_domain_limits *l = config_domain_limits(cfg, cfg->domains[i].name);
        require(l && l->retry_count >= 1 && l->retry_schedule);
        for (unsigned k = 0; k < l->retry_count; k++)
            require(l->retry_schedule[k] >= 1);
    }
    for (size_t i = 0; i < cfg->route_count; i++) {
        const struct config_route *r = config_route_for(cfg, cfg->routes[i].domain);
        for (size_t k = 0; r && k < r->host_count; k++)
            require(r->hosts[k] && *r->hosts[k]);
    }
    for (size_t i = 0; i < cfg->binding_group_count; i++)
        for (size_t k = 0; k < cfg->binding_groups[i].member_count; k++)
            require(cfg->binding_groups[i].members[k].binding != NULL);
    for (size_t i = 0; i < cfg->module_count; i++)
        require(cfg->modules[i].name && json_is_object(cfg->modules[i].options));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_errors errs = {0};
    char *text = malloc(size + 1);

    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    struct vipmta_config *cfg = config_load_string(text, FUZZ_NAME, &errs);
    free(text);

    /* a config, or at least one error, each naming the file on one line of
     * its own: no control characters (vipmta -t prints one error a line) */
    require((cfg == NULL) == (errs.count > 0));
    for (size_t i = 0; i < errs.count; i++) {
        const char *m = errs.messages[i];
        require(m && strncmp(m, FUZZ_NAME, strlen(FUZZ_NAME)) == 0);
        for (; *m; m++)
            require((unsigned char)*m >= 0x20 && (unsigned char)*m != 0x7F);
    }
    if (cfg)
        exercise(cfg);
    config_release(cfg);
    config_errors_clear(&errs);
    return 0;
}
