/* smtp_parse.h: the pure SMTP command parser (server side), one line at a time. */
#ifndef VIPMTA_SMTP_PARSE_H
#define VIPMTA_SMTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define SMTP_COMMAND_LINE_MAX 512  /* RFC 5321 4.5.3.1.4, including CRLF */
#define SMTP_TEXT_LINE_MAX 1000    /* RFC 5321 4.5.3.1.6, including CRLF */
#define SMTP_PATH_MAX 256          /* RFC 5321 4.5.3.1.3, including <> */
#define SMTP_DOMAIN_MAX 255
#define SMTP_PARAMS_MAX 8

enum smtp_verb {
    SMTP_VERB_UNKNOWN = 0,
    SMTP_VERB_HELO,
    SMTP_VERB_EHLO,
    SMTP_VERB_MAIL,
    SMTP_VERB_RCPT,
    SMTP_VERB_DATA,
    SMTP_VERB_RSET,
    SMTP_VERB_NOOP,
    SMTP_VERB_QUIT,
    SMTP_VERB_VRFY,
    SMTP_VERB_HELP,
    SMTP_VERB_STARTTLS,
    SMTP_VERB_BDAT,
};

enum smtp_parse_status {
    SMTP_PARSE_OK = 0,
    SMTP_PARSE_UNKNOWN_COMMAND,  /* 500 5.5.2 */
    SMTP_PARSE_SYNTAX,           /* 501 5.5.4 (bad arguments) */
    SMTP_PARSE_LINE_TOO_LONG,    /* 500 5.5.6 */
    SMTP_PARSE_BAD_PARAMETER,    /* 555 5.5.4 (unknown or malformed MAIL/RCPT parameter) */
};

enum smtp_body_type { SMTP_BODY_UNSPECIFIED = 0, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME };

struct smtp_command {
    enum smtp_verb verb;
    /* HELO/EHLO: the domain or address literal; VRFY/HELP/NOOP: the raw argument. */
    char arg[SMTP_COMMAND_LINE_MAX];
    /* MAIL/RCPT: the path without angle brackets ("" is the null reverse-path). */
    char path[SMTP_PATH_MAX];
    /* MAIL parameters understood by the server. */
    int has_size;
    uint64_t size;
    enum smtp_body_type body;
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
enum smtp_parse_status smtp_parse_command(const char *line, size_t len, struct smtp_command *out,
                                          const char **error_text);

/* The domain part of an address ("user@Example.COM" -> "Example.COM"); NULL
 * when there is none. Points into `address`. */
const char *smtp_address_domain(const char *address);

#endif
