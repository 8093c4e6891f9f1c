/* smtpd_command.c: the SMTP commands (EHLO..QUIT), their sequence rules, relay control and recipient limits. */
#include "smtpd_session.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void smtpd_transaction_reset(struct smtpd_session *s)
{
    free(s->sender);
    s->sender = NULL;
    for (size_t i = 0; i < s->rcpt_count; i++)
        free(s->rcpts[i]);
    s->rcpt_count = 0;
    s->rcpt_attempts = 0;
    s->smtputf8 = 0;
    s->rcpt_limit_logged = 0;
}

/* Replies with a protocol error and counts it. */
static void smtpd_protocol_error(struct smtpd_session *s, const char *reply, const char *why)
{
    smtpd_log(s, VIPMTA_LOG_INFO, "protocol error: %s%s%s", reply, why ? ": " : "", why ? why : "");
    smtpd_reply(s, "%s", reply);
    smtpd_session_error(s);
}

/* Non-zero when `domain` is one of relay_domains (case-insensitive, a final dot ignored). */
static int smtpd_relay_domain(const struct vipmta_config *cfg, const char *domain)
{
    size_t n = strlen(domain);
    if (n && domain[n - 1] == '.')
        n--;
    for (size_t i = 0; i < cfg->relay_domain_count; i++) {
        const char *d = cfg->relay_domains[i];
        size_t m = strlen(d);
        if (m && d[m - 1] == '.')
            m--;
        if (m == n && strncasecmp(d, domain, n) == 0)
            return 1;
    }
    return 0;
}

static void smtpd_cmd_hello(struct smtpd_session *s, const struct smtpd_command *cmd, int esmtp)
{
    const struct vipmta_config *cfg = s->cfg;
    char *helo = strdup(cmd->arg);
    if (!helo) {
        smtpd_reply(s, "451 4.3.0 Error: out of memory, try again");
        return;
    }
    smtpd_transaction_reset(s);
    free(s->helo);
    s->helo = helo;
    s->esmtp = esmtp ? 1 : 0;
    if (!esmtp) {
        smtpd_reply(s, "250 %s", cfg->hostname);
        return;
    }
    smtpd_reply(s, "250-%s", cfg->hostname);
    smtpd_reply(s, "250-PIPELINING");
    if (cfg->smtp.max_message_size)
        smtpd_reply(s, "250-SIZE %zu", cfg->smtp.max_message_size);
    else
        smtpd_reply(s, "250-SIZE");
    smtpd_reply(s, "250-8BITMIME");
    smtpd_tls_ehlo(s);
    smtpd_reply(s, "250-ENHANCEDSTATUSCODES");
    smtpd_reply(s, "250-SMTPUTF8");
    smtpd_reply(s, "250 HELP");
}

static void smtpd_cmd_mail(struct smtpd_session *s, const struct smtpd_command *cmd)
{
    const struct vipmta_config *cfg = s->cfg;
    char buf[SMTPD_PATH_MAX];
    if (!s->helo) {
        smtpd_protocol_error(s, "503 5.5.1 Error: send HELO/EHLO first", "MAIL");
        return;
    }
    if (s->sender) {
        smtpd_protocol_error(s, "503 5.5.1 Error: nested MAIL command", NULL);
        return;
    }
    if (smtpd_tls_required(s, "MAIL"))
        return;
    size_t max = cfg->smtp.max_message_size;
    if (cmd->has_size && max && cmd->size > max) {
        smtpd_log(s, VIPMTA_LOG_NOTICE,
                  "reject: MAIL from=<%s> SIZE=%llu over max_message_size %zu: 552 5.3.4",
                  smtpd_printable(cmd->path, buf, sizeof(buf)), (unsigned long long)cmd->size, max);
        smtpd_reply(s, "552 5.3.4 Error: message size exceeds fixed maximum message size (%zu bytes)",
                    max);
        return;
    }
    s->sender = strdup(cmd->path);
    if (!s->sender) {
        smtpd_reply(s, "451 4.3.0 Error: out of memory, try again");
        return;
    }
    s->smtputf8 = cmd->smtputf8 ? 1 : 0;
    s->rcpt_attempts = 0;
    smtpd_reply(s, "250 2.1.0 Ok");
}

static void smtpd_cmd_rcpt(struct smtpd_session *s, const struct smtpd_command *cmd)
{
    const struct vipmta_config *cfg = s->cfg;
    char path[SMTPD_PATH_MAX], from[SMTPD_PATH_MAX], dom[SMTPD_PATH_MAX];
    if (!s->sender) {
        smtpd_protocol_error(s, "503 5.5.1 Error: need MAIL command", "RCPT");
        return;
    }
    s->rcpt_attempts++;
    smtpd_printable(cmd->path, path, sizeof(path));
    if (cfg->smtp.max_recipients && s->rcpt_count >= cfg->smtp.max_recipients) {
        if (!s->rcpt_limit_logged)
            smtpd_log(s, VIPMTA_LOG_NOTICE, "too many recipients (max_recipients %u): 452 4.5.3",
                      cfg->smtp.max_recipients);
        s->rcpt_limit_logged = 1;
        smtpd_reply(s, "452 4.5.3 Error: too many recipients (at most %u per message)",
                    cfg->smtp.max_recipients);
        return;
    }
    const char *domain = smtpd_address_domain(cmd->path);
    const char *rcpt = cmd->path;
    if (!domain && strcasecmp(cmd->path, "postmaster") == 0 && s->cfg->postmaster) {
        /* <Postmaster> without a domain is always accepted (RFC 5321 4.5.1),
         * from any client: it goes to the configured postmaster address */
        rcpt = s->cfg->postmaster;
        domain = "";
    } else if (!domain || !*domain) {
        smtpd_log(s, VIPMTA_LOG_INFO, "reject: RCPT to=<%s>: no domain: 501 5.1.3", path);
        smtpd_reply(s, "501 5.1.3 <%s>: Recipient address rejected: a domain is required", path);
        return;
    }
    smtpd_printable(domain, dom, sizeof(dom));
    if (rcpt == cmd->path && !s->may_relay && !s->auth_user && !smtpd_relay_domain(s->cfg, domain)) {
        smtpd_log(s, VIPMTA_LOG_NOTICE,
                  "reject: RCPT from=<%s> to=<%s>: 554 5.7.1 Relay access denied",
                  smtpd_printable(s->sender, from, sizeof(from)), path);
        smtpd_reply(s,
                    "554 5.7.1 <%s>: Relay access denied (client %s is not in relay_from and %s "
                    "is not in relay_domains)",
                    path, s->addr_str, dom);
        smtpd_session_error(s);
        return;
    }
    if (s->rcpt_count == s->rcpt_cap) {
        size_t cap = s->rcpt_cap ? s->rcpt_cap * 2 : 8;
        char **grown = realloc(s->rcpts, cap * sizeof(*grown));
        if (!grown) {
            smtpd_reply(s, "452 4.3.0 Error: out of memory, try again");
            return;
        }
        s->rcpts = grown;
        s->rcpt_cap = cap;
    }
    char *copy = strdup(rcpt);
    if (!copy) {
        smtpd_reply(s, "452 4.3.0 Error: out of memory, try again");
        return;
    }
    s->rcpts[s->rcpt_count++] = copy;
    smtpd_reply(s, "250 2.1.5 Ok");
}

static void smtpd_cmd_data(struct smtpd_session *s)
{
    if (!s->sender) {
        smtpd_protocol_error(s, "503 5.5.1 Error: need MAIL command", "DATA");
        return;
    }
    if (!s->rcpt_count) {
        if (s->rcpt_attempts)
            smtpd_protocol_error(s, "554 5.5.1 Error: no valid recipients", "DATA");
        else
            smtpd_protocol_error(s, "503 5.5.1 Error: need RCPT command", "DATA");
        return;
    }
    if (smtpd_data_begin(s) != 0)
        return;
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    s->state = SMTPD_STATE_DATA;
    smtpd_session_arm_data(s);
}

static void smtpd_parse_failed(struct smtpd_session *s, enum smtpd_parse_status st,
                               const char *text)
{
    char reply[600];
    switch (st) {
    case SMTPD_PARSE_UNKNOWN_COMMAND:
        snprintf(reply, sizeof(reply), "500 5.5.2 Error: command not recognized");
        break;
    case SMTPD_PARSE_LINE_TOO_LONG:
        snprintf(reply, sizeof(reply),
                 "500 5.5.6 Error: line too long (command lines are limited to %d octets)",
                 SMTPD_COMMAND_LINE_MAX);
        break;
    case SMTPD_PARSE_BAD_PARAMETER:
        snprintf(reply, sizeof(reply), "555 5.5.4 %s",
                 text ? text : "Unsupported or malformed parameter");
        break;
    case SMTPD_PARSE_SYNTAX:
    default:
        snprintf(reply, sizeof(reply), "501 5.5.4 %s",
                 text ? text : "Syntax error in parameters or arguments");
        break;
    }
    smtpd_protocol_error(s, reply, NULL);
}

void smtpd_command_run(struct smtpd_session *s, const char *line, size_t len)
{
    const struct vipmta_config *cfg = s->cfg;
    struct smtpd_command cmd;
    const char *text = NULL;

    if (s->auth && smtpd_auth_continue(s, line, len))
        return; /* a reply to an AUTH challenge, not a command */
    memset(&cmd, 0, sizeof(cmd));
    enum smtpd_parse_status st = smtpd_parse_command(line, len, &cmd, &text);
    if (st != SMTPD_PARSE_OK) {
        smtpd_parse_failed(s, st, text);
        return;
    }
    switch (cmd.verb) {
    case SMTPD_VERB_EHLO:
        smtpd_cmd_hello(s, &cmd, 1);
        break;
    case SMTPD_VERB_HELO:
        smtpd_cmd_hello(s, &cmd, 0);
        break;
    case SMTPD_VERB_MAIL:
        smtpd_cmd_mail(s, &cmd);
        break;
    case SMTPD_VERB_RCPT:
        smtpd_cmd_rcpt(s, &cmd);
        break;
    case SMTPD_VERB_DATA:
        smtpd_cmd_data(s);
        break;
    case SMTPD_VERB_RSET:
        smtpd_transaction_reset(s);
        smtpd_reply(s, "250 2.0.0 Ok");
        break;
    case SMTPD_VERB_NOOP:
        smtpd_reply(s, "250 2.0.0 Ok");
        break;
    case SMTPD_VERB_QUIT:
        smtpd_reply(s, "221 2.0.0 %s closing connection", cfg->hostname);
        smtpd_session_close(s);
        break;
    case SMTPD_VERB_VRFY:
        smtpd_reply(s, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
        break;
    case SMTPD_VERB_HELP:
        smtpd_reply(s, "214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP "
                    "STARTTLS AUTH");
        break;
    case SMTPD_VERB_STARTTLS:
        smtpd_tls_command(s);
        break;
    case SMTPD_VERB_AUTH:
        smtpd_auth_command(s, cmd.arg);
        break;
    case SMTPD_VERB_BDAT:
        smtpd_protocol_error(s, "502 5.5.1 Error: BDAT is not offered (no CHUNKING)", NULL);
        break;
    case SMTPD_VERB_UNKNOWN:
    default:
        smtpd_parse_failed(s, SMTPD_PARSE_UNKNOWN_COMMAND, NULL);
        break;
    }
}
