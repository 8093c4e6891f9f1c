/* smtpd_parse.h: the pure SMTP command parser (server side), one line at a time. */
#ifndef VIPMTA_CORE_SMTPD_PARSE_H
#define VIPMTA_CORE_SMTPD_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define SMTPD_COMMAND_LINE_MAX 512  /* RFC 5321 4.5.3.1.4, including CRLF */
#define SMTPD_TEXT_LINE_MAX 1000    /* RFC 5321 4.5.3.1.6, including CRLF */
#define SMTPD_PATH_MAX 256          /* RFC 5321 4.5.3.1.3, including <> */
#define SMTPD_DOMAIN_MAX 255
#define SMTPD_PARAMS_MAX 8

enum smtpd_verb {
    SMTPD_VERB_UNKNOWN = 0,
    SMTPD_VERB_HELO,
    SMTPD_VERB_EHLO,
    SMTPD_VERB_MAIL,
    SMTPD_VERB_RCPT,
    SMTPD_VERB_DATA,
    SMTPD_VERB_RSET,
    SMTPD_VERB_NOOP,
    SMTPD_VERB_QUIT,
    SMTPD_VERB_VRFY,
    SMTPD_VERB_HELP,
    SMTPD_VERB_STARTTLS,
    SMTPD_VERB_BDAT,
    SMTPD_VERB_AUTH,     /* arg: "MECHANISM [initial-response]" */
};

enum smtpd_parse_status {
    SMTPD_PARSE_OK = 0,
    SMTPD_PARSE_UNKNOWN_COMMAND,  /* 500 5.5.2 */
    SMTPD_PARSE_SYNTAX,           /* 501 5.5.4 (bad arguments) */
    SMTPD_PARSE_LINE_TOO_LONG,    /* 500 5.5.6 */
    SMTPD_PARSE_BAD_PARAMETER,    /* 555 5.5.4 (unknown or malformed MAIL/RCPT parameter) */
};

enum smtpd_body_type { SMTPD_BODY_UNSPECIFIED = 0, SMTPD_BODY_7BIT, SMTPD_BODY_8BITMIME };

struct smtpd_command {
    enum smtpd_verb verb;
    /* HELO/EHLO: the domain or address literal; VRFY/HELP/NOOP: the raw argument. */
    char arg[SMTPD_COMMAND_LINE_MAX];
    /* MAIL/RCPT: the path without angle brackets ("" is the null reverse-path). */
    char path[SMTPD_PATH_MAX];
    /* MAIL parameters understood by the server. */
    int has_size;
    uint64_t size;
    enum smtpd_body_type body;
    int smtputf8;
    /* Error texts that name the offending input (e.g. "Unsupported parameter:
     * FOO") are written here; *error_text then points into this buffer, so it
     * stays valid as long as *out does. Printable ASCII only. */
    char error_buf[96];
};

/* Parses one command line (with or without the trailing CRLF or bare LF; `len`
 * bytes, no NUL needed). Never reads past `len`, never allocates. On an error
 * `*error_text` (if not NULL) gets a human text for the reply: a static string
 * or out->error_buf; on success it is set to NULL. `*out` is always reset. */
enum smtpd_parse_status smtpd_parse_command(const char *line, size_t len, struct smtpd_command *out,
                                          const char **error_text);

/* The domain part of an address ("user@Example.COM" -> "Example.COM"); NULL
 * when there is none. Points into `address`. */
const char *smtpd_address_domain(const char *address);

#endif
