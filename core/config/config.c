/* config.c: loads the JSON config file: parse, validate every key, apply defaults. */
#include "config.h"
#include "config_internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *const top_keys[] = {
    "hostname", "postmaster", "spool_dir", "spool_sync", "spool_memory", "module_path", "listen", "relay_from", "relay_domains",
    "bindings", "binding_groups", "default_binding_group", "binding_rules", "domains",
    "routes", "max_outbound_connections", "smtp", "dns", "modules", "log_level", "delivery_log", "control_socket",
    "metrics", "tls",
    "log_format", "log_file", "user", "group", "run_as_root", /* config_ops.c */
    NULL};

int config_hostname_ok(const char *name)
{
    size_t len = strlen(name), label = 0;
    if (len == 0 || len > 253)
        return 0;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (label == 0)
                return 0;
            label = 0;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return 0;
        if (++label > 63)
            return 0;
    }
    return 1;
}

void config_lower(char *s)
{
    for (; s && *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

static int config_check_path(struct config_ctx *c, const char *path, const char *s)
{
    if (*s)
        return 0;
    config_error(c, path, "expected a file or directory path, found an empty string");
    return -1;
}

/* A path at `key`, resolved against the config file's directory; absent or null: *out stays. */
static void config_get_path(struct config_ctx *c, const json_t *root, const char *key, char **out)
{
    char *s = NULL;

    if (config_get_string(c, root, key, "", &s) != 0 || !s)
        return;
    if (config_check_path(c, key, s) == 0) {
        free(*out);
        *out = config_resolve_path(c, s);
    }
    free(s);
}

static int config_check_cidr(struct config_ctx *c, const char *path, const char *s)
{
    struct config_cidr cidr;
    if (config_parse_cidr(s, &cidr) == 0)
        return 0;
    config_error(c, path, "\"%s\" is not an address or network (examples: 127.0.0.0/8, ::1/128)", s);
    return -1;
}

static int config_check_domain(struct config_ctx *c, const char *path, const char *s)
{
    if (config_hostname_ok(s))
        return 0;
    config_error(c, path, "\"%s\" is not a domain name", s);
    return -1;
}

static int config_check_dns_server(struct config_ctx *c, const char *path, const char *s)
{
    unsigned char buf[16];
    char host[64];
    unsigned port;
    if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
        return 0;
    if (config_parse_hostport(s, host, sizeof(host), &port) == 0 &&
        (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1))
        return 0;
    config_error(c, path, "\"%s\" is not a DNS server address (\"127.0.0.1\", \"127.0.0.1:5353\", "
              "\"[::1]:53\")", s);
    return -1;
}

static void config_parse_listen(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    static const char *const keys[] = {"address", "port", "tls", "certificates", "require_tls",
                                       "auth", "auth_without_tls", NULL};
    if (!v) {
        cfg->listen = calloc(1, sizeof(*cfg->listen));
        cfg->listen[0].address = strdup("127.0.0.1");
        cfg->listen[0].port = 2525;
        cfg->listen_count = 1;
        return;
    }
    if (!json_is_array(v)) {
        config_error(c, "listen", "expected a list of {\"address\", \"port\"}, found %s",
                  config_type_name(v));
        return;
    }
    if (json_array_size(v) == 0) {
        config_error(c, "listen", "expected at least one {\"address\", \"port\"}, found an empty "
                     "list: vipmta would accept no mail (leave listen out for the default, "
                     "127.0.0.1:2525)");
        return;
    }
    cfg->listen = calloc(json_array_size(v) + 1, sizeof(*cfg->listen));
    size_t i;
    json_t *item;
    json_array_foreach(v, i, item) {
        char p[CONFIG_PATH_MAX];
        config_path_index(p, "listen", i);
        if (!json_is_object(item)) {
            config_error(c, p, "expected {\"address\", \"port\"}, found %s", config_type_name(item));
            continue;
        }
        config_check_keys(c, item, p, keys);
        struct config_listen *l = &cfg->listen[cfg->listen_count];
        unsigned long long port = 0;
        int bad_address = config_get_string(c, item, "address", p, &l->address) != 0;
        int bad_port = config_get_uint(c, item, "port", p, 1, 65535, &port) != 0;
        unsigned char buf[16];
        if (bad_address) {
            /* reported: not a string */
        } else if (!l->address) {
            config_error(c, p, "missing \"address\" (an IPv4 or IPv6 literal such as 127.0.0.1 or ::1)");
        } else if (inet_pton(AF_INET, l->address, buf) != 1 &&
                   inet_pton(AF_INET6, l->address, buf) != 1) {
            char q[CONFIG_PATH_MAX];
            config_path_key(q, p, "address");
            config_error(c, q, "\"%s\" is not an IPv4 or IPv6 address (a literal such as 127.0.0.1, "
                      "0.0.0.0 or ::1; host names are not looked up)", l->address);
        }
        if (!json_object_get(item, "port") && !bad_port)
            config_error(c, p, "missing \"port\" (a TCP port from 1 to 65535, such as 25)");
        l->port = (unsigned)port;
        config_parse_listen_tls(c, cfg, item, p, l);
        cfg->listen_count++;
    }
}

static void config_parse_smtp(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    static const char *const keys[] = {"max_message_size", "max_recipients", "max_sessions",
                                       "max_sessions_per_ip", "command_timeout", "data_timeout",
                                       "max_errors", "data_deadline", "busy_command_timeout",
                                       "busy_percent", "ipv6_prefix", "bare_line_ends", NULL};
    struct config_smtp_limits *s = &cfg->smtp;
    *s = (struct config_smtp_limits){.max_message_size = 26214400, .max_recipients = 1000,
                                     .max_sessions = 1000, .max_sessions_per_ip = 50,
                                     .command_timeout = 300, .data_timeout = 180,
                                     .max_errors = 10, .data_deadline = 600,
                                     .busy_command_timeout = 10, .busy_percent = 80,
                                     .ipv6_prefix = 64};
    if (!v)
        return;
    if (!json_is_object(v)) {
        config_error(c, "smtp", "expected an object, found %s", config_type_name(v));
        return;
    }
    config_check_keys(c, v, "smtp", keys);
    unsigned long long x;
    x = s->max_message_size;
    if (config_get_uint(c, v, "max_message_size", "smtp", 1024, 1ULL << 34, &x) == 0)
        s->max_message_size = (size_t)x;
#define CFG_SMTP(key, min, max)                                    \
    do {                                                           \
        x = s->key;                                                \
        if (config_get_uint(c, v, #key, "smtp", min, max, &x) == 0)   \
            s->key = (unsigned)x;                                  \
    } while (0)
    CFG_SMTP(max_recipients, 1, 100000);
    CFG_SMTP(max_sessions, 1, 1000000);
    CFG_SMTP(max_sessions_per_ip, 1, 1000000);
    CFG_SMTP(command_timeout, 1, 3600);
    CFG_SMTP(data_timeout, 1, 3600);
    CFG_SMTP(max_errors, 1, 1000);
    CFG_SMTP(data_deadline, 1, 86400);
    CFG_SMTP(busy_command_timeout, 1, 3600);
    CFG_SMTP(busy_percent, 1, 100);
    CFG_SMTP(ipv6_prefix, 32, 128);
#undef CFG_SMTP
    char *bare = NULL;
    if (config_get_string(c, v, "bare_line_ends", "smtp", &bare) == 0 && bare) {
        if (strcmp(bare, "reject") == 0)
            s->bare_line_ends_reject = 1;
        else if (strcmp(bare, "normalize") != 0)
            config_error(c, "smtp.bare_line_ends", "expected \"normalize\" (the default: a bare CR "
                         "or LF in a message ends its line, stored as CRLF) or \"reject\" (such a "
                         "message is refused with 554 5.6.0), found \"%s\"", bare);
    }
    free(bare);
}

static void config_parse_dns(struct config_ctx *c, struct vipmta_config *cfg, const json_t *v)
{
    static const char *const keys[] = {"servers", "timeout_ms", "tries", "mx_port", NULL};
    cfg->dns.timeout_ms = 5000;
    cfg->dns.tries = 2;
    cfg->dns.mx_port = 25;
    if (!v)
        return;
    if (!json_is_object(v)) {
        config_error(c, "dns", "expected an object, found %s", config_type_name(v));
        return;
    }
    config_check_keys(c, v, "dns", keys);
    config_get_string_list(c, json_object_get(v, "servers"), "dns.servers", &cfg->dns.servers,
                        &cfg->dns.server_count, config_check_dns_server);
    unsigned long long x;
    x = cfg->dns.timeout_ms;
    if (config_get_uint(c, v, "timeout_ms", "dns", 10, 600000, &x) == 0)
        cfg->dns.timeout_ms = (unsigned)x;
    x = cfg->dns.tries;
    if (config_get_uint(c, v, "tries", "dns", 1, 10, &x) == 0)
        cfg->dns.tries = (unsigned)x;
    x = cfg->dns.mx_port;
    if (config_get_uint(c, v, "mx_port", "dns", 1, 65535, &x) == 0)
        cfg->dns.mx_port = (unsigned)x;
}

static void config_parse_paths(struct config_ctx *c, struct vipmta_config *cfg, const json_t *root)
{
    config_get_path(c, root, "spool_dir", &cfg->spool_dir);
    if (!cfg->spool_dir)
        cfg->spool_dir = strdup(VIPMTA_LOCALSTATEDIR "/spool/vipmta");
    config_get_string(c, root, "spool_sync", "", &cfg->spool_sync);
    if (!cfg->spool_sync)
        cfg->spool_sync = strdup("fsync");
    else if (strcmp(cfg->spool_sync, "fsync") != 0 && strcmp(cfg->spool_sync, "syncfs") != 0)
        config_error(c, "spool_sync", "expected \"fsync\" (each file, the default) or \"syncfs\" "
                  "(the whole spool filesystem once per round), found \"%s\"", cfg->spool_sync);
    unsigned long long mem = 64ULL << 20; /* the spool's own default, SPOOL_MEMORY_DEFAULT */
    config_get_uint(c, root, "spool_memory", "", 0, 1ULL << 40, &mem);
    cfg->spool_memory = (size_t)mem;
    config_get_path(c, root, "delivery_log", &cfg->delivery_log);
    if (json_is_string(json_object_get(root, "control_socket")) &&
        !*json_string_value(json_object_get(root, "control_socket")))
        cfg->control_socket = strdup(""); /* "" disables the control socket */
    else
        config_get_path(c, root, "control_socket", &cfg->control_socket);
    config_get_string_list(c, json_object_get(root, "module_path"), "module_path", &cfg->module_path,
                        &cfg->module_path_count, config_check_path);
    for (size_t i = 0; i < cfg->module_path_count; i++) {
        char *abs = config_resolve_path(c, cfg->module_path[i]);
        free(cfg->module_path[i]);
        cfg->module_path[i] = abs;
    }
    if (!json_object_get(root, "module_path")) {
        cfg->module_path = calloc(2, sizeof(char *));
        cfg->module_path[0] = strdup(VIPMTA_MODULEDIR);
        cfg->module_path_count = 1;
    }
}

static void config_parse_relay(struct config_ctx *c, struct vipmta_config *cfg, const json_t *root)
{
    char **list = NULL;
    size_t n = 0;

    if (!json_object_get(root, "relay_from")) {
        cfg->relay_from = calloc(2, sizeof(*cfg->relay_from));
        config_parse_cidr("127.0.0.0/8", &cfg->relay_from[0]);
        config_parse_cidr("::1/128", &cfg->relay_from[1]);
        cfg->relay_from_count = 2;
    } else {
        config_get_string_list(c, json_object_get(root, "relay_from"), "relay_from", &list, &n,
                            config_check_cidr);
        cfg->relay_from = calloc(n + 1, sizeof(*cfg->relay_from));
        for (size_t i = 0; i < n; i++) {
            config_parse_cidr(list[i], &cfg->relay_from[cfg->relay_from_count++]);
            free(list[i]);
        }
        free(list);
    }
    config_get_string_list(c, json_object_get(root, "relay_domains"), "relay_domains",
                        &cfg->relay_domains, &cfg->relay_domain_count, config_check_domain);
    for (size_t i = 0; i < cfg->relay_domain_count; i++)
        config_lower(cfg->relay_domains[i]);
}

static void config_parse_root(struct config_ctx *c, struct vipmta_config *cfg, const json_t *root)
{
    config_check_keys(c, root, "", top_keys);
    config_get_string(c, root, "hostname", "", &cfg->hostname);
    if (cfg->hostname && !config_hostname_ok(cfg->hostname))
        config_error(c, "hostname", "\"%s\" is not a host name", cfg->hostname);
    if (!cfg->hostname) {
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        cfg->hostname = strdup(host);
    }
    /* where mail to <Postmaster> (no domain, RFC 5321 4.5.1) goes */
    config_get_string(c, root, "postmaster", "", &cfg->postmaster);
    if (cfg->postmaster) {
        const char *at = strrchr(cfg->postmaster, '@');
        if (!at || at == cfg->postmaster || !config_hostname_ok(at + 1) ||
            strpbrk(cfg->postmaster, " <>\"\\"))
            config_error(c, "postmaster", "expected an address like postmaster@example.com, "
                         "found \"%s\"", cfg->postmaster);
    } else if (cfg->hostname && asprintf(&cfg->postmaster, "postmaster@%s", cfg->hostname) < 0) {
        cfg->postmaster = NULL;
    }
    config_parse_paths(c, cfg, root);
    config_parse_tls(c, cfg, json_object_get(root, "tls")); /* before listen: AUTH defaults */
    config_parse_listen(c, cfg, json_object_get(root, "listen"));
    config_parse_relay(c, cfg, root);
    config_parse_bindings(c, cfg, json_object_get(root, "bindings"));
    config_parse_binding_groups(c, cfg, json_object_get(root, "binding_groups"));
    config_get_string(c, root, "default_binding_group", "", &cfg->default_binding_group);
    config_check_default_group(c, cfg);
    config_parse_binding_rules(c, cfg, json_object_get(root, "binding_rules"));
    config_parse_domains(c, cfg, json_object_get(root, "domains"));
    config_parse_routes(c, cfg, json_object_get(root, "routes"));
    unsigned long long max_out = 20000;
    config_get_uint(c, root, "max_outbound_connections", "", 1, 10000000, &max_out);
    cfg->max_outbound_connections = (unsigned)max_out;
    config_parse_smtp(c, cfg, json_object_get(root, "smtp"));
    config_parse_dns(c, cfg, json_object_get(root, "dns"));
    config_parse_modules(c, cfg, json_object_get(root, "modules"));
    config_parse_metrics(c, cfg, json_object_get(root, "metrics"));
    config_parse_ops(c, cfg, root);
    config_get_string(c, root, "log_level", "", &cfg->log_level);
    if (!cfg->log_level) {
        cfg->log_level = strdup("info");
    } else if (strcmp(cfg->log_level, "error") && strcmp(cfg->log_level, "warning") &&
               strcmp(cfg->log_level, "notice") && strcmp(cfg->log_level, "info") &&
               strcmp(cfg->log_level, "debug")) {
        config_error(c, "log_level", "expected one of error, warning, notice, info, debug, found \"%s\"",
                  cfg->log_level);
    }
}

/* The directory of `name`, absolute. */
static char *config_dir_of(const char *name)
{
    char *copy = strdup(name ? name : ".");
    char *dir = copy ? dirname(copy) : NULL;
    char *abs = dir ? realpath(dir, NULL) : NULL;
    char *out = abs ? abs : (dir ? strdup(dir) : NULL);
    free(copy);
    return out;
}

static int config_is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static int config_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* What the usual mistakes behind a JSON syntax error need said: Jansson's
 * text names the token, not the cause. `jerr->position` is just past the
 * offending token. Returns "" when there is nothing to add. */
static const char *config_syntax_hint(const char *text, size_t len, const json_error_t *jerr)
{
    size_t pos = jerr->position > 0 && (size_t)jerr->position <= len ? (size_t)jerr->position : 0;

    if (config_ends_with(jerr->text, "near '/'") || config_ends_with(jerr->text, "near '#'"))
        return " (JSON allows no comments: remove it)";
    if (pos && (text[pos - 1] == '}' || text[pos - 1] == ']') &&
        (config_ends_with(jerr->text, "near '}'") || config_ends_with(jerr->text, "near ']'"))) {
        size_t i = pos - 1;
        while (i > 0 && config_is_space(text[i - 1]))
            i--;
        if (i > 0 && text[i - 1] == ',')
            return " (remove the comma before it: JSON allows no trailing comma)";
        if (i > 0 && text[i - 1] == ':')
            return " (a value is missing after the ':')";
        return "";
    }
    if (strncmp(jerr->text, "duplicate object key", 20) == 0)
        return " (a key may appear once in an object: remove one)";
    if (strncmp(jerr->text, "unexpected newline", 18) == 0)
        return " (a string must end on its line: is a closing '\"' missing?)";
    if (strcmp(jerr->text, "'}' expected near end of file") == 0)
        return " (a '{' is not closed)";
    if (strcmp(jerr->text, "']' expected near end of file") == 0)
        return " (a '[' is not closed)";
    if (strncmp(jerr->text, "'}' expected near", 17) == 0 ||
        strncmp(jerr->text, "']' expected near", 17) == 0)
        return " (is a comma missing before it?)";
    return "";
}

struct vipmta_config *config_load_string(const char *text, const char *name,
                                         struct config_errors *errs)
{
    json_error_t jerr;
    const char *file = name ? name : "(config)";

    if (!text) {
        config_errors_add(errs, "%s: no configuration text", file);
        return NULL;
    }
    size_t len = strlen(text);
    if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) {
        config_errors_add(errs, "%s:1:1: the file starts with a UTF-8 byte order mark (the invisible "
                          "bytes EF BB BF): save it as UTF-8 without a BOM", file);
        return NULL;
    }
    if (strspn(text, " \t\r\n") == len) {
        config_errors_add(errs, "%s: the file is empty: the configuration is a JSON object, at least {}",
                   file);
        return NULL;
    }
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);

    if (!root) {
        config_errors_add(errs, "%s:%d:%d: %s%s", file, jerr.line, jerr.column, jerr.text,
                   config_syntax_hint(text, len, &jerr));
        return NULL;
    }
    if (!json_is_object(root)) {
        config_errors_add(errs, "%s: the configuration must be a JSON object ({ ... }), found %s", file,
                   config_type_name(root));
        json_decref(root);
        return NULL;
    }
    struct vipmta_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        config_errors_add(errs, "%s: out of memory loading the configuration", file);
        json_decref(root);
        return NULL;
    }
    char *dir = config_dir_of(file);
    struct config_ctx c = {.file = file, .dir = dir, .errs = errs};
    cfg->refs = 1;
    cfg->path = strdup(file);
    cfg->root = root;
    /* out of memory here only costs modules the line numbers they show */
    config_lines_scan(text, len, &cfg->lines, &cfg->line_count);
    config_parse_root(&c, cfg, root);
    free(dir);
    if (c.errors) {
        config_release(cfg);
        return NULL;
    }
    return cfg;
}

struct vipmta_config *config_load_file(const char *path, struct config_errors *errs)
{
    FILE *f = fopen(path, "re");
    if (!f) {
        config_errors_add(errs, "%s: cannot open the configuration file: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        config_errors_add(errs, "%s: is %s, not a configuration file (give the JSON file itself%s)",
                          path, S_ISDIR(st.st_mode) ? "a directory" : "not a regular file",
                          S_ISDIR(st.st_mode) ? ", e.g. vipmta.json in it" : "");
        fclose(f);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while (buf && (n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            if (cap > (64u << 20))
                break;
            char *grown = realloc(buf, cap * 2);
            if (!grown) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = grown;
            cap *= 2;
        }
    }
    int rerr = ferror(f);
    fclose(f);
    if (!buf || rerr) {
        config_errors_add(errs, "%s: cannot read the configuration file", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (strlen(buf) != len) {
        config_errors_add(errs, "%s: the file contains a NUL byte: not a JSON text file", path);
        free(buf);
        return NULL;
    }
    struct vipmta_config *cfg = config_load_string(buf, path, errs);
    free(buf);
    return cfg;
}

static void config_free_strings(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static void config_destroy(struct vipmta_config *cfg)
{
    free(cfg->path);
    free(cfg->hostname);
    free(cfg->postmaster);
    free(cfg->spool_dir);
    free(cfg->spool_sync);
    config_free_strings(cfg->module_path, cfg->module_path_count);
    if (cfg->runtime_free)
        cfg->runtime_free(cfg->runtime);
    for (size_t i = 0; i < cfg->listen_count; i++) {
        free(cfg->listen[i].address);
        config_free_listen_tls(&cfg->listen[i]);
    }
    free(cfg->listen);
    free(cfg->relay_from);
    config_free_strings(cfg->relay_domains, cfg->relay_domain_count);
    for (size_t i = 0; i < cfg->binding_count; i++) {
        free(cfg->bindings[i].name);
        free(cfg->bindings[i].address);
        free(cfg->bindings[i].address6);
        free(cfg->bindings[i].ehlo);
    }
    free(cfg->bindings);
    for (size_t i = 0; i < cfg->binding_group_count; i++) {
        for (size_t m = 0; m < cfg->binding_groups[i].member_count; m++)
            free(cfg->binding_groups[i].members[m].binding);
        free(cfg->binding_groups[i].members);
        free(cfg->binding_groups[i].name);
    }
    free(cfg->binding_groups);
    free(cfg->default_binding_group);
    for (size_t i = 0; i < cfg->binding_rule_count; i++) {
        free(cfg->binding_rules[i].match);
        free(cfg->binding_rules[i].binding_group);
        free(cfg->binding_rules[i].binding);
    }
    free(cfg->binding_rules);
    for (size_t i = 0; i < cfg->domain_count; i++) {
        free(cfg->domains[i].name);
        free(cfg->domains[i].retry_schedule);
    }
    free(cfg->domains);
    for (size_t i = 0; i < cfg->route_count; i++) {
        free(cfg->routes[i].domain);
        config_free_strings(cfg->routes[i].hosts, cfg->routes[i].host_count);
        free(cfg->routes[i].auth_user);
        free(cfg->routes[i].auth_password);
    }
    free(cfg->routes);
    config_free_strings(cfg->dns.servers, cfg->dns.server_count);
    config_free_modules(cfg);
    config_lines_free(cfg->lines, cfg->line_count);
    free(cfg->log_level);
    free(cfg->delivery_log);
    free(cfg->control_socket);
    free(cfg->metrics.address);
    config_free_ops(cfg);
    config_free_tls(cfg);
    json_decref(cfg->root);
    free(cfg);
}

struct vipmta_config *config_ref(struct vipmta_config *cfg)
{
    if (cfg)
        __atomic_add_fetch(&cfg->refs, 1, __ATOMIC_RELAXED);
    return cfg;
}

void config_release(struct vipmta_config *cfg)
{
    if (cfg && __atomic_sub_fetch(&cfg->refs, 1, __ATOMIC_ACQ_REL) == 0)
        config_destroy(cfg);
}

const struct config_domain_limits *config_domain_limits(const struct vipmta_config *cfg,
                                                        const char *domain)
{
    for (size_t i = 1; domain && i < cfg->domain_count; i++)
        if (strcasecmp(cfg->domains[i].name, domain) == 0)
            return &cfg->domains[i].limits;
    return &cfg->domains[0].limits;
}

const struct config_route *config_route_for(const struct vipmta_config *cfg, const char *domain)
{
    const struct config_route *star = NULL;
    for (size_t i = 0; i < cfg->route_count; i++) {
        if (cfg->routes[i].host_count == 0)
            continue;
        if (domain && strcasecmp(cfg->routes[i].domain, domain) == 0)
            return &cfg->routes[i];
        if (strcmp(cfg->routes[i].domain, "*") == 0)
            star = &cfg->routes[i];
    }
    return star;
}
