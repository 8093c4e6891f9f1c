/* fuzz_smtp_command.c: libFuzzer harness for the SMTP command parser (smtpd_parse_command). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtpd/smtpd_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise of the parser's contract is a crash, so the fuzzer keeps it. */
static void require(int ok)
{
    if (!ok)
        abort();
}

static int printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7E)
            return 0;
    return 1;
}

/* The string in buf[0..size) is NUL-terminated inside the buffer. */
static int terminated(const char *buf, size_t size)
{
    return memchr(buf, '\0', size) != NULL;
}

/* Parses line[0..size) + `ending` and requires the verdict `st` and the fields of `cmd`. */
static void same_with_ending(const char *line, size_t size, const char *ending,
                             enum smtpd_parse_status st, const struct smtpd_command *cmd)
{
    size_t elen = strlen(ending);
    char *ended = malloc(size + elen);
    struct smtpd_command out;
    const char *text = NULL;

    require(ended != NULL);
    if (size)
        memcpy(ended, line, size);
    memcpy(ended + size, ending, elen);
    require(smtpd_parse_command(ended, size + elen, &out, &text) == st);
    require(out.verb == cmd->verb && strcmp(out.path, cmd->path) == 0 &&
            strcmp(out.arg, cmd->arg) == 0 && out.has_size == cmd->has_size &&
            out.size == cmd->size && out.body == cmd->body && out.smtputf8 == cmd->smtputf8);
    free(ended);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy, so a read past `size` is an ASan report */
    char *line = malloc(size ? size : 1);
    struct smtpd_command cmd;
    const char *text = "unset";

    if (!line)
        return 0;
    if (size)
        memcpy(line, data, size);
    enum smtpd_parse_status st = smtpd_parse_command(line, size, &cmd, &text);

    require(terminated(cmd.arg, sizeof(cmd.arg)));
    require(terminated(cmd.path, sizeof(cmd.path)));
    require(terminated(cmd.error_buf, sizeof(cmd.error_buf)));
    if (st == SMTPD_PARSE_OK) {
        require(text == NULL);
        require(cmd.verb != SMTPD_VERB_UNKNOWN);
        if (cmd.verb == SMTPD_VERB_MAIL || cmd.verb == SMTPD_VERB_RCPT) {
            require(strlen(cmd.path) <= SMTPD_PATH_MAX - 2);
            /* every accepted path but <> and <Postmaster> has a domain, and
             * smtpd_address_domain finds it where the parser saw it */
            const char *domain = smtpd_address_domain(cmd.path);
            require(!domain || (domain > cmd.path && domain < cmd.path + strlen(cmd.path)));
            if (cmd.path[0] && strcasecmp(cmd.path, "postmaster") != 0)
                require(domain != NULL && domain[-1] == '@');
        }
        if (cmd.verb == SMTPD_VERB_HELO || cmd.verb == SMTPD_VERB_EHLO)
            require(cmd.arg[0] != '\0' && strlen(cmd.arg) <= SMTPD_DOMAIN_MAX);
    } else {
        require(st == SMTPD_PARSE_UNKNOWN_COMMAND || st == SMTPD_PARSE_SYNTAX ||
                st == SMTPD_PARSE_LINE_TOO_LONG || st == SMTPD_PARSE_BAD_PARAMETER);
        /* the reply text: never NULL, printable ASCII, and no half-parsed data left */
        require(text != NULL && *text && printable_ascii(text));
        require(cmd.arg[0] == '\0' && cmd.path[0] == '\0' && !cmd.has_size && !cmd.smtputf8);
    }

    /* the same line parsed twice gives the same verdict */
    struct smtpd_command again;
    const char *text2 = NULL;
    require(smtpd_parse_command(line, size, &again, &text2) == st);
    require(again.verb == cmd.verb && strcmp(again.path, cmd.path) == 0);
    require((text == NULL) == (text2 == NULL) && (!text || strcmp(text, text2) == 0));

    /* the line end is not part of the command: a line without one parses
     * the same with CRLF or a bare LF added */
    if (!memchr(line, '\r', size) && !memchr(line, '\n', size)) {
        same_with_ending(line, size, "\r\n", st, &cmd);
        same_with_ending(line, size, "\n", st, &cmd);
    }
    free(line);
    return 0;
}
