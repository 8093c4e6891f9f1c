/* check_config.c: Check suite for the JSON config loader: defaults, values, every error message. */
#include <check.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "control/control.h"

static struct config_errors errs;

static struct vipmta_config *load(const char *text)
{
    config_errors_clear(&errs);
    return config_load_string(text, "/etc/t/test.json", &errs);
}

/* Asserts loading fails and that one of the errors is exactly `expected`. */
static void expect_error(const char *text, const char *expected)
{
    struct vipmta_config *cfg = load(text);
    ck_assert_ptr_null(cfg);
    for (size_t i = 0; i < errs.count; i++)
        if (strcmp(errs.messages[i], expected) == 0)
            return;
    ck_abort_msg("expected error [%s], got %zu errors, first [%s]", expected, errs.count,
                 errs.count ? errs.messages[0] : "");
}

START_TEST(test_empty_object_gets_defaults)
{
    struct vipmta_config *cfg = load("{}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->listen_count, 1);
    ck_assert_str_eq(cfg->listen[0].address, "127.0.0.1");
    ck_assert_uint_eq(cfg->listen[0].port, 2525);
    ck_assert_uint_eq(cfg->relay_from_count, 2);
    ck_assert_uint_eq(cfg->smtp.max_message_size, 26214400);
    ck_assert_uint_eq(cfg->smtp.max_recipients, 1000);
    ck_assert_uint_eq(cfg->smtp.max_sessions_per_ip, 50);
    ck_assert_uint_eq(cfg->dns.mx_port, 25);
    ck_assert_uint_eq(cfg->domain_count, 1);
    ck_assert_str_eq(cfg->domains[0].name, "*");
    const struct config_domain_limits *l = config_domain_limits(cfg, "any.example");
    ck_assert_uint_eq(l->max_connections_per_binding, 32);
    ck_assert_uint_eq(l->messages_per_connection, 100);
    ck_assert_uint_eq(l->retry_count, 5);
    ck_assert_uint_eq(l->retry_schedule[0], 60);
    ck_assert_uint_eq(l->max_queue_lifetime, 432000);
    ck_assert_str_eq(cfg->log_level, "info");
    ck_assert_uint_eq(cfg->module_path_count, 1);
    ck_assert_str_eq(cfg->module_path[0], VIPMTA_MODULEDIR);
    ck_assert_ptr_null(config_route_for(cfg, "example.com"));
    config_release(cfg);
}
END_TEST

static const char *full_config =
    "{\n"
    "  \"hostname\": \"mta.example.com\",\n"
    "  \"spool_dir\": \"spool\",\n"
    "  \"module_path\": [\"/opt/mods\", \"rel\"],\n"
    "  \"listen\": [{\"address\": \"::1\", \"port\": 25}],\n"
    "  \"relay_from\": [\"10.0.0.0/8\"],\n"
    "  \"relay_domains\": [\"local.test\"],\n"
    "  \"bindings\": {\"vip1\": {\"address\": \"127.0.0.2\", \"ehlo\": \"v1.example.com\"},\n"
    "               \"vip2\": {\"address6\": \"::1\"}},\n"
    "  \"binding_groups\": {\"g\": [\"vip1\", {\"binding\": \"vip2\", \"weight\": 3}]},\n"
    "  \"default_binding_group\": \"g\",\n"
    "  \"binding_rules\": [{\"sender_domain\": \"news.test\", \"binding\": \"vip2\"},\n"
    "                    {\"header\": \"X-Binding\"}],\n"
    "  \"domains\": {\"*\": {\"max_connections_per_binding\": 8},\n"
    "              \"Slow.Example\": {\"messages_per_connection\": 5, \"retry_schedule\": [1, 2]}},\n"
    "  \"routes\": {\"*\": [\"127.0.0.1:2526\", \"[::1]:2527\"], \"a.test\": \"mx.a.test:25\"},\n"
    "  \"dns\": {\"servers\": [\"127.0.0.1:5353\"], \"mx_port\": 2600},\n"
    "  \"modules\": [{\"name\": \"example\", \"options\": {\"veto\": true}},\n"
    "              {\"name\": \"other\", \"enabled\": false}],\n"
    "  \"log_level\": \"debug\"\n"
    "}\n";

START_TEST(test_full_config_values)
{
    struct vipmta_config *cfg = load(full_config);
    ck_assert_msg(cfg != NULL, "%s", errs.count ? errs.messages[0] : "");
    ck_assert_str_eq(cfg->hostname, "mta.example.com");
    ck_assert_str_eq(cfg->spool_dir, "/etc/t/spool"); /* relative to the file */
    ck_assert_str_eq(cfg->module_path[0], "/opt/mods");
    ck_assert_str_eq(cfg->module_path[1], "/etc/t/rel");
    ck_assert_str_eq(cfg->listen[0].address, "::1");
    ck_assert_uint_eq(cfg->relay_from_count, 1);
    ck_assert_str_eq(cfg->relay_domains[0], "local.test");
    ck_assert_uint_eq(cfg->binding_count, 2);
    ck_assert_str_eq(cfg->bindings[0].name, "vip1");
    ck_assert_str_eq(cfg->bindings[0].ehlo, "v1.example.com");
    ck_assert_str_eq(cfg->bindings[1].address6, "::1");
    ck_assert_uint_eq(cfg->binding_groups[0].member_count, 2);
    ck_assert_uint_eq(cfg->binding_groups[0].members[1].weight, 3);
    ck_assert_str_eq(cfg->default_binding_group, "g");
    ck_assert_uint_eq(cfg->binding_rule_count, 2);
    ck_assert_int_eq(cfg->binding_rules[0].kind, RULE_SENDER_DOMAIN);
    ck_assert_int_eq(cfg->binding_rules[1].kind, RULE_HEADER);
    const struct config_domain_limits *slow = config_domain_limits(cfg, "slow.example");
    ck_assert_uint_eq(slow->messages_per_connection, 5);
    ck_assert_uint_eq(slow->max_connections_per_binding, 8); /* inherited from "*" */
    ck_assert_uint_eq(slow->retry_count, 2);
    ck_assert_uint_eq(slow->retry_schedule[1], 2);
    ck_assert_uint_eq(config_domain_limits(cfg, "other.test")->max_connections_per_binding, 8);
    const struct config_route *r = config_route_for(cfg, "A.TEST");
    ck_assert_str_eq(r->hosts[0], "mx.a.test:25");
    r = config_route_for(cfg, "b.test");
    ck_assert_uint_eq(r->host_count, 2);
    ck_assert_str_eq(r->hosts[1], "[::1]:2527");
    ck_assert_str_eq(cfg->dns.servers[0], "127.0.0.1:5353");
    ck_assert_uint_eq(cfg->dns.mx_port, 2600);
    ck_assert_uint_eq(cfg->module_count, 2);
    ck_assert_int_eq(cfg->modules[0].enabled, 1);
    ck_assert_int_eq(cfg->modules[1].enabled, 0);
    ck_assert_uint_eq(cfg->modules[1].index, 1);
    ck_assert(json_is_true(json_object_get(cfg->modules[0].options, "veto")));
    ck_assert(json_is_object(cfg->modules[1].options));
    ck_assert_str_eq(cfg->log_level, "debug");
    config_release(cfg);
}
END_TEST

START_TEST(test_parse_error_position)
{
    expect_error("{\n  \"hostname\": \"x\",\n  \"listen\": [ }\n",
                 "/etc/t/test.json:3:15: unexpected token near '}'");
}
END_TEST

/* JSON syntax errors a person makes get a hint naming the cause. */
START_TEST(test_parse_error_hints)
{
    expect_error("{\n  \"hostname\": \"x\",\n  \"log_level\": \"info\",\n}\n",
                 "/etc/t/test.json:4:1: string or '}' expected near '}' (remove the comma before "
                 "it: JSON allows no trailing comma)");
    expect_error("{\"relay_from\": [\"127.0.0.0/8\", ]}",
                 "/etc/t/test.json:1:32: unexpected token near ']' (remove the comma before it: "
                 "JSON allows no trailing comma)");
    expect_error("{\n  // our name\n  \"hostname\": \"x\"\n}",
                 "/etc/t/test.json:2:3: string or '}' expected near '/' (JSON allows no comments: "
                 "remove it)");
    expect_error("{\"hostname\": \"x\"\n \"log_level\": \"info\"}",
                 "/etc/t/test.json:2:12: '}' expected near '\"log_level\"' (is a comma missing "
                 "before it?)");
    expect_error("{\"listen\": [{\"address\": \"::1\", \"port\": }]}",
                 "/etc/t/test.json:1:40: unexpected token near '}' (a value is missing after the "
                 "':')");
    expect_error("{\n  \"hostname\": \"x,\n  \"log_level\": \"info\"\n}",
                 "/etc/t/test.json:2:17: unexpected newline near '\"x,' (a string must end on its "
                 "line: is a closing '\"' missing?)");
    expect_error("{\"hostname\": \"x\"",
                 "/etc/t/test.json:1:16: '}' expected near end of file (a '{' is not closed)");
    expect_error("{\"relay_from\": [\"::1\"", "/etc/t/test.json:1:21: ']' expected near end of "
                                             "file (a '[' is not closed)");
    /* no hint where none fits */
    expect_error("{\"a\": [1, 2}", "/etc/t/test.json:1:12: ']' expected near '}'");
    expect_error("", "/etc/t/test.json: the file is empty: the configuration is a JSON object, "
                     "at least {}");
    expect_error(" \n\t\n", "/etc/t/test.json: the file is empty: the configuration is a JSON "
                           "object, at least {}");
}
END_TEST

/* A value of the wrong type is one error, not also "missing". */
START_TEST(test_wrong_type_reported_once)
{
    struct vipmta_config *cfg = load("{\"modules\": [{\"name\": 5}]}");
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.messages[0],
                     "/etc/t/test.json: modules[0].name: expected a string, found an integer");
    cfg = load("{\"listen\": [{\"address\": [], \"port\": 25}]}");
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.messages[0],
                     "/etc/t/test.json: listen[0].address: expected a string, found a list");
    cfg = load("{\"bindings\": {\"v\": {\"address\": \"127.0.0.2\"}}, "
               "\"binding_groups\": {\"g\": [{\"binding\": true}]}}");
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.messages[0],
                     "/etc/t/test.json: binding_groups.g[0].binding: expected a string, found a "
                     "boolean");
    expect_error("{\"bindings\": {\"v\": {\"address\": \"127.0.0.2\"}}, "
                 "\"binding_groups\": {\"g\": [{\"weight\": 2}]}}",
                 "/etc/t/test.json: binding_groups.g[0]: missing \"binding\" (a name defined under "
                 "\"bindings\")");
}
END_TEST

/* Control characters the user wrote are escaped in messages, so each error
 * stays on one line of vipmta -t output (found by fuzz_config; the input is
 * t/fuzz/regressions/fuzz_config/control-char-in-key). */
START_TEST(test_control_characters_escaped)
{
    struct vipmta_config *cfg = load("{\"ains\": {\"T\": {}}, \"routes\": {\"l\x7fg_le\": "
                                     "{\"\": 5}, \"x.test\": [\"\"]}}");
    ck_assert_ptr_null(cfg);
    ck_assert_uint_eq(errs.count, 4);
    ck_assert_str_eq(errs.messages[1], "/etc/t/test.json: routes.\"l\\x7fg_le\": unknown key "
                                       "\"\" (allowed: hosts, tls, auth)");
    ck_assert_str_eq(errs.messages[2], "/etc/t/test.json: routes.\"l\\x7fg_le\": missing "
                                       "\"hosts\" (\"host:port\" or a list of them)");
    ck_assert_str_eq(errs.messages[3], "/etc/t/test.json: routes.\"x.test\"[0]: \"\" is not "
                                       "host:port (a port from 1 to 65535 is required; IPv6 as "
                                       "[::1]:25)");
    expect_error("{\"hostname\": \"evil\\n\\u001b[31mred\\u007f\", \"x\\ty\": 1}",
                 "/etc/t/test.json: hostname: \"evil\\n\\x1b[31mred\\x7f\" is not a host name");
    ck_assert_str_eq(errs.messages[0],
                     "/etc/t/test.json: unknown key \"x\\ty\" (allowed: hostname, postmaster, spool_dir, "
                     "spool_sync, spool_memory, module_path, listen, relay_from, relay_domains, bindings, "
                     "binding_groups, default_binding_group, binding_rules, domains, routes, max_outbound_connections, smtp, "
                     "dns, modules, log_level, delivery_log, control_socket, metrics, tls, log_format, "
                     "log_file, user, group, run_as_root)");
}
END_TEST

START_TEST(test_duplicate_key)
{
    expect_error("{\n  \"hostname\": \"a\",\n  \"hostname\": \"b\"\n}",
                 "/etc/t/test.json:3:12: duplicate object key near '\"hostname\"' (a key may "
                 "appear once in an object: remove one)");
}
END_TEST

START_TEST(test_not_an_object)
{
    expect_error("[1, 2]", "/etc/t/test.json: the configuration must be a JSON object ({ ... }), "
                           "found a list");
}
END_TEST

START_TEST(test_spool_memory)
{
    struct vipmta_config *cfg = load("{}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->spool_memory, 64u << 20);
    config_release(cfg);
    cfg = load("{\"spool_memory\": 0}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_uint_eq(cfg->spool_memory, 0);
    config_release(cfg);
    ck_assert_ptr_null(load("{\"spool_memory\": -1}"));
    ck_assert_uint_ge(errs.count, 1);
    ck_assert_ptr_nonnull(strstr(errs.messages[0], "spool_memory"));
}
END_TEST

START_TEST(test_unknown_top_level_key)
{
    expect_error("{\"hostnme\": \"x\"}",
                 "/etc/t/test.json: unknown key \"hostnme\" (allowed: hostname, postmaster, spool_dir, spool_sync, "
                 "spool_memory, module_path, listen, relay_from, relay_domains, bindings, binding_groups, "
                 "default_binding_group, binding_rules, domains, routes, max_outbound_connections, smtp, dns, modules, "
                 "log_level, delivery_log, control_socket, metrics, tls, log_format, log_file, user, "
                 "group, run_as_root)");
}
END_TEST

START_TEST(test_unknown_nested_key)
{
    expect_error("{\"bindings\": {\"vip1\": {\"adress\": \"127.0.0.2\", \"address\": \"127.0.0.2\"}}}",
                 "/etc/t/test.json: bindings.vip1: unknown key \"adress\" (allowed: address, "
                 "address6, ehlo)");
    expect_error("{\"domains\": {\"*\": {\"retries\": 3}}}",
                 "/etc/t/test.json: domains.\"*\": unknown key \"retries\" (allowed: "
                 "max_connections_per_binding, max_connections, messages_per_connection, "
                 "connect_timeout, command_timeout, data_timeout, retry_schedule, "
                 "max_queue_lifetime, veto_retry, tls)");
}
END_TEST

START_TEST(test_wrong_types_name_the_path)
{
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1\", \"port\": \"25\"}]}",
                 "/etc/t/test.json: listen[0].port: expected an integer from 1 to 65535, found a "
                 "string");
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1\", \"port\": 70000}]}",
                 "/etc/t/test.json: listen[0].port: expected an integer from 1 to 65535, found 70000");
    expect_error("{\"modules\": [{\"name\": \"x\", \"options\": 3}]}",
                 "/etc/t/test.json: modules[0].options: expected an object, found an integer");
    expect_error("{\"modules\": [{\"name\": \"x\", \"enabled\": \"yes\"}]}",
                 "/etc/t/test.json: modules[0].enabled: expected true or false, found a string");
    expect_error("{\"domains\": {\"*\": {\"retry_schedule\": [60, \"x\"]}}}",
                 "/etc/t/test.json: domains.\"*\".retry_schedule[1]: expected seconds from 1 to "
                 "2592000, found a string");
    expect_error("{\"domains\": {\"*\": {\"retry_schedule\": [60, 0]}}}",
                 "/etc/t/test.json: domains.\"*\".retry_schedule[1]: expected seconds from 1 to "
                 "2592000, found 0");
    expect_error("{\"bindings\": {\"v\": {\"address\": \"127.0.0.2\"}}, \"binding_groups\": "
                 "{\"g\": []}}",
                 "/etc/t/test.json: binding_groups.g: expected a non-empty list of binding names or "
                 "{\"binding\", \"weight\"}, found an empty list");
    expect_error("{\"listen\": [{\"address\": \"localhost\", \"port\": 25}]}",
                 "/etc/t/test.json: listen[0].address: \"localhost\" is not an IPv4 or IPv6 address "
                 "(a literal such as 127.0.0.1, 0.0.0.0 or ::1; host names are not looked up)");
    expect_error("{\"listen\": [{\"address\": \"::1\"}]}",
                 "/etc/t/test.json: listen[0]: missing \"port\" (a TCP port from 1 to 65535, such "
                 "as 25)");
    expect_error("{\"hostname\": \"a\\u0000b\"}",
                 "/etc/t/test.json: hostname: the string contains a NUL character (\\u0000): remove "
                 "it");
    expect_error("{\"modules\": [{\"name\": \"\"}]}",
                 "/etc/t/test.json: modules[0].name: expected the module's file name without .so "
                 "(\"netacl\"), found an empty string");
}
END_TEST

START_TEST(test_references_checked)
{
    expect_error("{\"bindings\": {\"v\": {\"address\": \"127.0.0.2\"}}, \"binding_groups\": "
                 "{\"g\": [\"v\", \"nope\"]}}",
                 "/etc/t/test.json: binding_groups.g[1]: unknown binding \"nope\" (define it under "
                 "\"bindings\")");
    expect_error("{\"default_binding_group\": \"g\"}",
                 "/etc/t/test.json: default_binding_group: unknown binding group \"g\" (define it "
                 "under \"binding_groups\")");
    expect_error("{\"binding_rules\": [{\"sender_domain\": \"a.test\", \"binding\": \"v9\"}]}",
                 "/etc/t/test.json: binding_rules[0].binding: unknown binding \"v9\" (define it "
                 "under \"bindings\")");
    expect_error("{\"binding_rules\": [{\"sender_domain\": \"a.test\", \"binding_group\": \"g9\"}]}",
                 "/etc/t/test.json: binding_rules[0].binding_group: unknown binding group \"g9\" "
                 "(define it under \"binding_groups\")");
    expect_error("{\"modules\": [{\"name\": \"m\"}, {\"name\": \"m\"}]}",
                 "/etc/t/test.json: modules[1]: module \"m\" is listed twice (first as modules[0]): "
                 "to run it twice, give each entry an \"instance\" name");
}
END_TEST

START_TEST(test_value_syntax)
{
    expect_error("{\"routes\": {\"*\": \"host\"}}",
                 "/etc/t/test.json: routes.\"*\": \"host\" is not host:port (a port from 1 to "
                 "65535 is required; IPv6 as [::1]:25)");
    expect_error("{\"routes\": {\"a.test\": [\"127.0.0.1:25\", \"::1:25\"]}}",
                 "/etc/t/test.json: routes.\"a.test\"[1]: \"::1:25\" is not host:port (a port "
                 "from 1 to 65535 is required; IPv6 as [::1]:25)");
    expect_error("{\"relay_from\": [\"10.0.0.0/33\"]}",
                 "/etc/t/test.json: relay_from[0]: \"10.0.0.0/33\" is not an address or network "
                 "(examples: 127.0.0.0/8, ::1/128)");
    expect_error("{\"bindings\": {\"v\": {\"address\": \"::1\"}}}",
                 "/etc/t/test.json: bindings.v.address: \"::1\" is not an IPv4 address (an IPv6 "
                 "source address goes in \"address6\")");
    expect_error("{\"bindings\": {\"v\": {\"address\": \"v.example\"}}}",
                 "/etc/t/test.json: bindings.v.address: \"v.example\" is not an IPv4 address (a "
                 "literal such as 192.0.2.10; host names are not looked up)");
    expect_error("{\"bindings\": {\"v\": {\"address6\": \"127.0.0.2\"}}}",
                 "/etc/t/test.json: bindings.v.address6: \"127.0.0.2\" is not an IPv6 address (an "
                 "IPv4 source address goes in \"address\")");
    expect_error("{\"log_level\": \"loud\"}",
                 "/etc/t/test.json: log_level: expected one of error, warning, notice, info, debug, "
                 "found \"loud\"");
    expect_error("{\"dns\": {\"servers\": [\"dns.example\"]}}",
                 "/etc/t/test.json: dns.servers[0]: \"dns.example\" is not a DNS server address "
                 "(\"127.0.0.1\", \"127.0.0.1:5353\", \"[::1]:53\")");
}
END_TEST

START_TEST(test_every_error_collected)
{
    struct vipmta_config *cfg = load("{\"hostnme\": 1, \"listen\": [{\"port\": 0}], "
                                     "\"smtp\": {\"max_errors\": 0}, \"log_level\": 5}");
    ck_assert_ptr_null(cfg);
    /* unknown key, missing address, port range, max_errors range, log_level type */
    ck_assert_uint_eq(errs.count, 5);
}
END_TEST

START_TEST(test_missing_file)
{
    config_errors_clear(&errs);
    ck_assert_ptr_null(config_load_file("/nonexistent/vipmta.json", &errs));
    ck_assert_uint_eq(errs.count, 1);
    ck_assert_str_eq(errs.messages[0], "/nonexistent/vipmta.json: cannot open the configuration "
                                       "file: No such file or directory");
}
END_TEST

static int match(const char *cidr_text, const char *addr_text)
{
    struct config_cidr cidr;
    struct sockaddr_storage ss = {0};
    ck_assert_int_eq(config_parse_cidr(cidr_text, &cidr), 0);
    if (strchr(addr_text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, addr_text, &s6->sin6_addr);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        inet_pton(AF_INET, addr_text, &s4->sin_addr);
    }
    return config_cidr_match(&cidr, (struct sockaddr *)&ss);
}

START_TEST(test_control_socket)
{
    /* absent: SPOOL_DIR/control.sock */
    struct vipmta_config *cfg = load("{\"spool_dir\": \"spool\"}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_ptr_null(cfg->control_socket);
    char *p = control_socket_path(cfg);
    ck_assert_str_eq(p, "/etc/t/spool/control.sock");
    free(p);
    config_release(cfg);
    /* relative to the config's directory */
    cfg = load("{\"control_socket\": \"run/ctl.sock\"}");
    ck_assert_ptr_nonnull(cfg);
    p = control_socket_path(cfg);
    ck_assert_str_eq(p, "/etc/t/run/ctl.sock");
    free(p);
    config_release(cfg);
    /* "" disables it */
    cfg = load("{\"control_socket\": \"\"}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->control_socket, "");
    ck_assert_ptr_null(control_socket_path(cfg));
    config_release(cfg);
    expect_error("{\"control_socket\": 5}",
                 "/etc/t/test.json: control_socket: expected a string, found an integer");
}
END_TEST

START_TEST(test_cidr)
{
    struct config_cidr c;
    ck_assert_int_eq(config_parse_cidr("127.0.0.1", &c), 0);
    ck_assert_uint_eq(c.prefix, 32);
    ck_assert_int_eq(config_parse_cidr("::1", &c), 0);
    ck_assert_uint_eq(c.prefix, 128);
    ck_assert_int_eq(config_parse_cidr("10.0.0.0/33", &c), -1);
    ck_assert_int_eq(config_parse_cidr("10.0.0.0/", &c), -1);
    ck_assert_int_eq(config_parse_cidr("10.0.0/8", &c), -1);
    ck_assert_int_eq(config_parse_cidr("::/129", &c), -1);
    ck_assert_int_eq(config_parse_cidr("/8", &c), -1);
    ck_assert(match("127.0.0.0/8", "127.1.2.3"));
    ck_assert(!match("127.0.0.0/8", "128.0.0.1"));
    ck_assert(match("10.1.0.0/17", "10.1.127.255"));
    ck_assert(!match("10.1.0.0/17", "10.1.128.0"));
    ck_assert(match("0.0.0.0/0", "192.0.2.1"));
    ck_assert(match("fe80::/10", "fe80::1"));
    ck_assert(!match("fe80::/10", "fec0::1"));
    ck_assert(match("10.0.0.0/8", "::ffff:10.9.9.9")); /* IPv4-mapped */
    ck_assert(!match("::1/128", "127.0.0.1"));
}
END_TEST

START_TEST(test_ops_keys)
{
    struct vipmta_config *cfg = load("{}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->log_format, "text");
    ck_assert_ptr_null(cfg->log_file);
    ck_assert_ptr_null(cfg->user);
    ck_assert_ptr_null(cfg->group);
    ck_assert_int_eq(cfg->run_as_root, 0);
    config_release(cfg);
    cfg = load("{\"log_format\": \"json\", \"log_file\": \"log/main.jsonl\", "
               "\"user\": \"vipmta\", \"group\": \"mail\"}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->log_format, "json");
    ck_assert_str_eq(cfg->log_file, "/etc/t/log/main.jsonl");
    ck_assert_str_eq(cfg->user, "vipmta");
    ck_assert_str_eq(cfg->group, "mail");
    config_release(cfg);
    cfg = load("{\"run_as_root\": true}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cfg->run_as_root, 1);
    config_release(cfg);
    expect_error("{\"log_format\": \"xml\"}",
                 "/etc/t/test.json: log_format: expected \"text\" (the default) or \"json\" (one "
                 "JSON object per line), found \"xml\"");
    expect_error("{\"user\": \"a b\"}",
                 "/etc/t/test.json: user: expected a user name (like \"vipmta\"), found \"a b\"");
    expect_error("{\"user\": \"x\", \"group\": \"0\"}",
                 "/etc/t/test.json: group: expected a group name, found the number \"0\": give "
                 "the name (like \"vipmta\"), not the id");
    expect_error("{\"group\": \"mail\"}",
                 "/etc/t/test.json: group: \"group\" needs \"user\" (the daemon drops to user "
                 "and group together): add \"user\"");
    expect_error("{\"log_file\": \"\"}",
                 "/etc/t/test.json: log_file: expected a file path, found an empty string (leave "
                 "log_file out to log to syslog, or to stderr with -f)");
}
END_TEST

/* ---- metrics (config_metrics.c) ---- */

START_TEST(test_metrics_defaults)
{
    struct vipmta_config *cfg = load("{}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cfg->metrics.enabled, 0);
    config_release(cfg);
    cfg = load("{\"metrics\": null}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cfg->metrics.enabled, 0);
    config_release(cfg);
    cfg = load("{\"metrics\": {}}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cfg->metrics.enabled, 1);
    ck_assert_str_eq(cfg->metrics.address, "127.0.0.1");
    ck_assert_uint_eq(cfg->metrics.port, 9465);
    ck_assert_uint_eq(cfg->metrics.max_domains, 1000);
    ck_assert_int_eq(cfg->metrics.allow_non_loopback, 0);
    config_release(cfg);
    cfg = load("{\"metrics\": {\"address\": \"::1\", \"port\": 9100, \"max_domains\": 0}}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_str_eq(cfg->metrics.address, "::1");
    ck_assert_uint_eq(cfg->metrics.port, 9100);
    ck_assert_uint_eq(cfg->metrics.max_domains, 0);
    config_release(cfg);
    cfg = load("{\"metrics\": {\"address\": \"127.3.2.1\"}}");
    ck_assert_ptr_nonnull(cfg);
    config_release(cfg);
    cfg = load("{\"metrics\": {\"address\": \"0.0.0.0\", \"allow_non_loopback\": true}}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert_int_eq(cfg->metrics.allow_non_loopback, 1);
    config_release(cfg);
}
END_TEST

START_TEST(test_metrics_errors)
{
    expect_error("{\"metrics\": {\"port\": 0}}",
                 "/etc/t/test.json: metrics.port: expected an integer from 1 to 65535, found 0");
    expect_error("{\"metrics\": {\"port\": 70000}}",
                 "/etc/t/test.json: metrics.port: expected an integer from 1 to 65535, found 70000");
    expect_error("{\"metrics\": 9465}",
                 "/etc/t/test.json: metrics: expected an object such as {\"address\": "
                 "\"127.0.0.1\", \"port\": 9465} (or null to disable), found an integer");
    expect_error("{\"metrics\": {\"prot\": 1}}",
                 "/etc/t/test.json: metrics: unknown key \"prot\" (allowed: address, port, "
                 "allow_non_loopback, max_domains)");
    expect_error("{\"metrics\": {\"address\": \"localhost\"}}",
                 "/etc/t/test.json: metrics.address: \"localhost\" is not an IPv4 or IPv6 address "
                 "(a literal such as 127.0.0.1 or ::1; host names are not looked up)");
    expect_error("{\"metrics\": {\"address\": \"0.0.0.0\"}}",
                 "/etc/t/test.json: metrics.address: \"0.0.0.0\" is not a loopback address: the "
                 "metrics endpoint has no authentication and shows destination domains from mail "
                 "traffic, so it listens on 127.0.0.0/8 or ::1 only; set \"allow_non_loopback\": "
                 "true to listen there anyway (and restrict access with a firewall)");
    expect_error("{\"metrics\": {\"address\": \"10.1.2.3\", \"allow_non_loopback\": \"yes\"}}",
                 "/etc/t/test.json: metrics.allow_non_loopback: expected true or false, found a "
                 "string");
    expect_error("{\"metrics\": {\"max_domains\": -1}}",
                 "/etc/t/test.json: metrics.max_domains: expected an integer from 0 to 1000000, "
                 "found -1");
    expect_error("{\"listen\": [{\"address\": \"127.0.0.1\", \"port\": 2525}], "
                 "\"metrics\": {\"port\": 2525}}",
                 "/etc/t/test.json: metrics.port: 2525 is also the port of the SMTP listener "
                 "listen[0] (127.0.0.1): choose another port for metrics");
    /* another loopback address on the same port is fine */
    struct vipmta_config *cfg = load("{\"listen\": [{\"address\": \"127.0.0.1\", \"port\": 2525}], "
                                     "\"metrics\": {\"address\": \"127.0.0.2\", \"port\": 2525}}");
    ck_assert_ptr_nonnull(cfg);
    config_release(cfg);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, test_empty_object_gets_defaults);
    tcase_add_test(tc, test_full_config_values);
    tcase_add_test(tc, test_parse_error_position);
    tcase_add_test(tc, test_parse_error_hints);
    tcase_add_test(tc, test_wrong_type_reported_once);
    tcase_add_test(tc, test_control_characters_escaped);
    tcase_add_test(tc, test_duplicate_key);
    tcase_add_test(tc, test_not_an_object);
    tcase_add_test(tc, test_unknown_top_level_key);
    tcase_add_test(tc, test_spool_memory);
    tcase_add_test(tc, test_unknown_nested_key);
    tcase_add_test(tc, test_wrong_types_name_the_path);
    tcase_add_test(tc, test_references_checked);
    tcase_add_test(tc, test_value_syntax);
    tcase_add_test(tc, test_every_error_collected);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_cidr);
    tcase_add_test(tc, test_ops_keys);
    tcase_add_test(tc, test_control_socket);
    tcase_add_test(tc, test_metrics_defaults);
    tcase_add_test(tc, test_metrics_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    config_errors_clear(&errs);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
