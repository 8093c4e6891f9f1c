/* check_smtpd_parse.c: Check suite for the SMTP command parser (smtpd_parse_command, smtpd_address_domain). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtpd/smtpd_parse.h"

static struct smtpd_command cmd;
static const char *etext;

static enum smtpd_parse_status parse_n(const char *line, size_t len)
{
    etext = "unset";
    return smtpd_parse_command(line, len, &cmd, &etext);
}

static enum smtpd_parse_status parse(const char *line)
{
    return parse_n(line, strlen(line));
}

/* A heap copy of exactly `len` bytes, so ASan catches any read past len. */
static enum smtpd_parse_status parse_exact(const char *bytes, size_t len)
{
    char *copy = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, bytes, len);
    enum smtpd_parse_status st = parse_n(copy, len);
    free(copy);
    return st;
}

START_TEST(test_helo_ehlo)
{
    ck_assert_int_eq(parse("HELO client.example.org\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_HELO);
    ck_assert_str_eq(cmd.arg, "client.example.org");
    ck_assert_ptr_null(etext);
    ck_assert_int_eq(parse("EHLO mx1.example.com\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_EHLO);
    ck_assert_str_eq(cmd.arg, "mx1.example.com");
    ck_assert_int_eq(parse("EHLO [192.0.2.1]\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.arg, "[192.0.2.1]");
    ck_assert_int_eq(parse("EHLO [IPv6:2001:db8::1]\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.arg, "[IPv6:2001:db8::1]");
    ck_assert_int_eq(parse("EHLO my_pc\r\n"), SMTPD_PARSE_OK); /* tolerated */
    ck_assert_str_eq(cmd.arg, "my_pc");
}
END_TEST

START_TEST(test_helo_bad)
{
    ck_assert_int_eq(parse("EHLO\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_EHLO);
    ck_assert_str_eq(etext, "Syntax: EHLO hostname");
    ck_assert_int_eq(parse("HELO   \r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_str_eq(etext, "Syntax: HELO hostname");
    ck_assert_int_eq(parse("EHLO [300.1.1.1]\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("EHLO [IPv6:zz::1]\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("EHLO [1.2.3.4\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("EHLO a..b\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("EHLO two words\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("EHLO h\xc3\xa9llo\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_str_eq(cmd.arg, "");
}
END_TEST

START_TEST(test_verbs_case_insensitive)
{
    ck_assert_int_eq(parse("ehlo x.example\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_EHLO);
    ck_assert_int_eq(parse("mAiL fRoM:<a@b.example>\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_MAIL);
    ck_assert_str_eq(cmd.path, "a@b.example");
    ck_assert_int_eq(parse("rcpt to:<c@d.example>\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_RCPT);
    ck_assert_int_eq(parse("data\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_DATA);
    ck_assert_int_eq(parse("Quit\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_QUIT);
    ck_assert_int_eq(parse("starttls\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_STARTTLS);
}
END_TEST

START_TEST(test_simple_verbs)
{
    ck_assert_int_eq(parse("DATA\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_DATA);
    ck_assert_int_eq(parse("RSET\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_RSET);
    ck_assert_int_eq(parse("QUIT\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_QUIT);
    ck_assert_int_eq(parse("NOOP\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_NOOP);
    ck_assert_str_eq(cmd.arg, "");
    ck_assert_int_eq(parse("NOOP hello there\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.arg, "hello there");
    ck_assert_int_eq(parse("HELP\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_HELP);
    ck_assert_int_eq(parse("HELP mail\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.arg, "mail");
    ck_assert_int_eq(parse("VRFY postmaster\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_VRFY);
    ck_assert_str_eq(cmd.arg, "postmaster");
    ck_assert_int_eq(parse("BDAT 100 LAST\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_BDAT);
    ck_assert_str_eq(cmd.arg, "100 LAST");
    ck_assert_int_eq(parse("RSET   \r\n"), SMTPD_PARSE_OK); /* trailing blanks tolerated */
}
END_TEST

START_TEST(test_data_with_arg)
{
    ck_assert_int_eq(parse("DATA foo\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_DATA);
    ck_assert_str_eq(etext, "Syntax: DATA (no arguments)");
    ck_assert_int_eq(parse("RSET x\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("QUIT now\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("STARTTLS x\r\n"), SMTPD_PARSE_SYNTAX);
}
END_TEST

START_TEST(test_vrfy_without_arg)
{
    ck_assert_int_eq(parse("VRFY\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_VRFY);
    ck_assert_str_eq(etext, "Syntax: VRFY address");
    ck_assert_int_eq(parse("VRFY \r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("BDAT\r\n"), SMTPD_PARSE_SYNTAX);
}
END_TEST

START_TEST(test_unknown_verb)
{
    ck_assert_int_eq(parse("FOO bar\r\n"), SMTPD_PARSE_UNKNOWN_COMMAND);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_UNKNOWN);
    ck_assert_str_eq(etext, "Syntax: command not recognized");
    ck_assert_int_eq(parse("DATAX\r\n"), SMTPD_PARSE_UNKNOWN_COMMAND);
    ck_assert_int_eq(parse("MAIL:FROM:<a@b>\r\n"), SMTPD_PARSE_UNKNOWN_COMMAND);
    ck_assert_int_eq(parse("\r\n"), SMTPD_PARSE_UNKNOWN_COMMAND);
    ck_assert_int_eq(parse(""), SMTPD_PARSE_UNKNOWN_COMMAND);
    ck_assert_int_eq(parse(" DATA\r\n"), SMTPD_PARSE_UNKNOWN_COMMAND);
    ck_assert_int_eq(parse("GET / HTTP/1.1\r\n"), SMTPD_PARSE_UNKNOWN_COMMAND);
}
END_TEST

START_TEST(test_line_ends)
{
    ck_assert_int_eq(parse("NOOP\n"), SMTPD_PARSE_OK); /* bare LF */
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_NOOP);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example>\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "a@b.example");
    ck_assert_int_eq(parse_exact("RCPT TO:<c@d.example>", 21), SMTPD_PARSE_OK); /* no terminator */
    ck_assert_str_eq(cmd.path, "c@d.example");
    ck_assert_int_eq(parse_exact("QUIT", 4), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_QUIT);
    /* only `len` bytes count: "NOOPX" cut to 4 */
    ck_assert_int_eq(parse_n("NOOPX", 4), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_NOOP);
    /* a second line inside the buffer is not a command line */
    ck_assert_int_eq(parse("NOOP\r\nQUIT\r\n"), SMTPD_PARSE_SYNTAX);
}
END_TEST

START_TEST(test_line_length_boundary)
{
    char line[600];
    /* "NOOP " + filler = 510 octets, + CRLF = 512: accepted */
    memcpy(line, "NOOP ", 5);
    memset(line + 5, 'x', 505);
    memcpy(line + 510, "\r\n", 2);
    ck_assert_int_eq(parse_exact(line, 512), SMTPD_PARSE_OK);
    ck_assert_uint_eq(strlen(cmd.arg), 505);
    /* 511 + CRLF = 513: rejected */
    memset(line + 5, 'x', 506);
    memcpy(line + 511, "\r\n", 2);
    ck_assert_int_eq(parse_exact(line, 513), SMTPD_PARSE_LINE_TOO_LONG);
    ck_assert_str_eq(etext, "Syntax: line too long");
    /* the same without terminator or with a bare LF */
    ck_assert_int_eq(parse_exact(line, 510), SMTPD_PARSE_OK);
    ck_assert_int_eq(parse_exact(line, 511), SMTPD_PARSE_LINE_TOO_LONG);
    line[511] = '\n';
    ck_assert_int_eq(parse_exact(line, 512), SMTPD_PARSE_LINE_TOO_LONG);
    /* an unknown verb on a long line is still "too long" */
    memset(line, 'Z', 600);
    ck_assert_int_eq(parse_exact(line, 600), SMTPD_PARSE_LINE_TOO_LONG);
}
END_TEST

START_TEST(test_embedded_nul_and_controls)
{
    static const char nul_line[] = "MAIL FROM:<a\0b@c.example>\r\n";
    ck_assert_int_eq(parse_exact(nul_line, sizeof(nul_line) - 1), SMTPD_PARSE_SYNTAX);
    ck_assert_str_eq(etext, "Syntax: invalid character in command");
    ck_assert_str_eq(cmd.path, "");
    static const char nul_verb[] = "NO\0OP\r\n";
    ck_assert_int_eq(parse_exact(nul_verb, sizeof(nul_verb) - 1), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("NOOP a\rb\r\n"), SMTPD_PARSE_SYNTAX);   /* bare CR */
    ck_assert_int_eq(parse("NOOP \x1b[31m\r\n"), SMTPD_PARSE_SYNTAX); /* ESC */
    ck_assert_int_eq(parse("NOOP\ta\r\n"), SMTPD_PARSE_OK);           /* HTAB is white space */
    ck_assert_str_eq(cmd.arg, "a");
}
END_TEST

START_TEST(test_mail_basic)
{
    ck_assert_int_eq(parse("MAIL FROM:<alice@example.com>\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_MAIL);
    ck_assert_str_eq(cmd.path, "alice@example.com");
    ck_assert_int_eq(cmd.has_size, 0);
    ck_assert_int_eq(cmd.body, SMTPD_BODY_UNSPECIFIED);
    ck_assert_int_eq(cmd.smtputf8, 0);
    ck_assert_ptr_null(etext);
    /* a space after the colon is tolerated */
    ck_assert_int_eq(parse("MAIL FROM: <alice@example.com>\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "alice@example.com");
    ck_assert_int_eq(parse("MAIL FROM:<a.b+tag@[192.0.2.7]>\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "a.b+tag@[192.0.2.7]");
    ck_assert_int_eq(parse("MAIL FROM:<u@[IPv6:2001:db8::7]>\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "u@[IPv6:2001:db8::7]");
}
END_TEST

START_TEST(test_null_path)
{
    ck_assert_int_eq(parse("MAIL FROM:<>\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "");
    ck_assert_int_eq(parse("MAIL FROM:<> SIZE=10\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "");
    ck_assert_int_eq(cmd.has_size, 1);
    ck_assert_int_eq(parse("RCPT TO:<>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_str_eq(etext, "Syntax: RCPT TO:<address>");
}
END_TEST

START_TEST(test_source_route)
{
    ck_assert_int_eq(parse("MAIL FROM:<@relay1.example,@relay2.example:joe@example.com>\r\n"),
                     SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "joe@example.com");
    ck_assert_int_eq(parse("RCPT TO:<@hop.example:ann@example.net>\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "ann@example.net");
    ck_assert_int_eq(parse("RCPT TO:<@hop.example,ann@example.net>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("RCPT TO:<@:ann@example.net>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("RCPT TO:<@hop.example:>\r\n"), SMTPD_PARSE_SYNTAX);
}
END_TEST

START_TEST(test_bad_brackets)
{
    ck_assert_int_eq(parse("MAIL FROM:alice@example.com\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_MAIL);
    ck_assert_str_eq(etext, "Syntax: MAIL FROM:<address>");
    ck_assert_int_eq(parse("MAIL FROM:<alice@example.com\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:alice@example.com>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<<alice@example.com>>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<alice@example.com>x\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL TO:<alice@example.com>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM <alice@example.com>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("RCPT TO:bob@example.com\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_str_eq(etext, "Syntax: RCPT TO:<address>");
    ck_assert_str_eq(cmd.path, "");
}
END_TEST

START_TEST(test_bad_addresses)
{
    ck_assert_int_eq(parse("MAIL FROM:<alice>\r\n"), SMTPD_PARSE_SYNTAX);     /* no domain */
    ck_assert_int_eq(parse("MAIL FROM:<@example.com>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<a@>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<a@b@c>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<a b@c.example>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<a@exa_mple.com>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<a@example..com>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<a@[1.2.3]>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<\"unterminated@example.com>\r\n"), SMTPD_PARSE_SYNTAX);
}
END_TEST

START_TEST(test_quoted_local_part)
{
    ck_assert_int_eq(parse("MAIL FROM:<\"john doe\"@example.com>\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "\"john doe\"@example.com");
    ck_assert_int_eq(parse("RCPT TO:<\"a>b\\\"c\"@example.com>\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "\"a>b\\\"c\"@example.com");
    ck_assert_str_eq(smtpd_address_domain(cmd.path), "example.com");
}
END_TEST

START_TEST(test_path_too_long)
{
    char line[400], addr[300];
    /* a path of exactly SMTPD_PATH_MAX octets including <> is accepted */
    size_t local = SMTPD_PATH_MAX - 2 - strlen("@example.com");
    memset(addr, 'a', local);
    strcpy(addr + local, "@example.com");
    snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", addr);
    ck_assert_int_eq(parse(line), SMTPD_PARSE_OK);
    ck_assert_uint_eq(strlen(cmd.path), SMTPD_PATH_MAX - 2);
    ck_assert_str_eq(cmd.path, addr);
    /* one more octet is a syntax error */
    memset(addr, 'a', local + 1);
    strcpy(addr + local + 1, "@example.com");
    snprintf(line, sizeof(line), "RCPT TO:<%s>\r\n", addr);
    ck_assert_int_eq(parse(line), SMTPD_PARSE_SYNTAX);
    ck_assert_str_eq(etext, "Syntax: address too long");
}
END_TEST

START_TEST(test_mail_size)
{
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SIZE=12345\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.has_size, 1);
    ck_assert_uint_eq(cmd.size, 12345);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> size=18446744073709551615\r\n"), SMTPD_PARSE_OK);
    ck_assert_uint_eq(cmd.size, UINT64_MAX);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SIZE=18446744073709551616\r\n"),
                     SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Bad SIZE parameter");
    ck_assert_int_eq(cmd.has_size, 0);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SIZE=99999999999999999999999\r\n"),
                     SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SIZE=12k\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SIZE\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SIZE=\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SIZE=-1\r\n"), SMTPD_PARSE_BAD_PARAMETER);
}
END_TEST

START_TEST(test_mail_body_and_utf8)
{
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> BODY=8BITMIME\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.body, SMTPD_BODY_8BITMIME);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> body=7bit SIZE=1 SMTPUTF8\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.body, SMTPD_BODY_7BIT);
    ck_assert_int_eq(cmd.smtputf8, 1);
    ck_assert_uint_eq(cmd.size, 1);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> BODY=BINARYMIME\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Bad BODY parameter (7BIT or 8BITMIME)");
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SMTPUTF8=yes\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "SMTPUTF8 takes no value");
}
END_TEST

START_TEST(test_mail_utf8_addresses)
{
    /* "jose\xcc\x81@exa\xcc\x81mple.com": non-ASCII needs SMTPUTF8 on MAIL */
    ck_assert_int_eq(parse("MAIL FROM:<j\xc3\xb8rn@b\xc3\xbc"
                           "cher.example>\r\n"),
                     SMTPD_PARSE_SYNTAX);
    ck_assert_str_eq(etext, "Syntax: non-ASCII address needs SMTPUTF8");
    ck_assert_int_eq(parse("MAIL FROM:<j\xc3\xb8rn@b\xc3\xbc"
                           "cher.example> SMTPUTF8\r\n"),
                     SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "j\xc3\xb8rn@b\xc3\xbc"
                               "cher.example");
    /* RCPT just accepts well-formed UTF-8 */
    ck_assert_int_eq(parse("RCPT TO:<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b.example>\r\n"), SMTPD_PARSE_OK);
    /* but not broken UTF-8 */
    ck_assert_int_eq(parse("RCPT TO:<a\xff@b.example>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("RCPT TO:<a\xc3@b.example>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<a\xc0\xaf@b.example> SMTPUTF8\r\n"), SMTPD_PARSE_SYNTAX);
}
END_TEST

START_TEST(test_bad_params)
{
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> MT-PRIORITY=<>\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Unsupported parameter: MT-PRIORITY");
    ck_assert_ptr_eq(etext, cmd.error_buf);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> AUTH\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Bad AUTH parameter");
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> AUTH=<>\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(parse("AUTH PLAIN AGEAYg==\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(cmd.verb, SMTPD_VERB_AUTH);
    ck_assert_str_eq(cmd.arg, "PLAIN AGEAYg==");
    ck_assert_int_eq(parse("AUTH\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> X-FOO\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Unsupported parameter: X-FOO");
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SIZE=1 SIZE=2\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Duplicate parameter: SIZE");
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> =x\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Malformed parameter");
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> -X\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> BODY==8BITMIME\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Malformed parameter: BODY");
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> A B C D E F G H I\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Too many parameters");
    /* a long keyword is cut in the text */
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> "
                           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"),
                     SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Unsupported parameter: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...");
}
END_TEST

START_TEST(test_rcpt_params)
{
    ck_assert_int_eq(parse("RCPT TO:<bob@example.com> NOTIFY=FAILURE,DELAY "
                           "ORCPT=rfc822;bob@example.com\r\n"),
                     SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "bob@example.com");
    ck_assert_int_eq(parse("RCPT TO:<bob@example.com> SIZE=10\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Unsupported parameter: SIZE");
    ck_assert_int_eq(parse("RCPT TO:<bob@example.com> SMTPUTF8\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_int_eq(parse("RCPT TO:<bob@example.com> NOTIFY\r\n"), SMTPD_PARSE_BAD_PARAMETER);
    ck_assert_str_eq(etext, "Bad NOTIFY parameter");
}
END_TEST

START_TEST(test_rcpt_postmaster)
{
    ck_assert_int_eq(parse("RCPT TO:<Postmaster>\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "Postmaster");
    ck_assert_ptr_null(smtpd_address_domain(cmd.path));
    ck_assert_int_eq(parse("RCPT TO:<POSTMASTER>\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(parse("RCPT TO:<webmaster>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("MAIL FROM:<postmaster>\r\n"), SMTPD_PARSE_SYNTAX);
    ck_assert_int_eq(parse("RCPT TO: <postmaster@example.com>\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "postmaster@example.com");
}
END_TEST

START_TEST(test_out_reset)
{
    ck_assert_int_eq(parse("MAIL FROM:<a@b.example> SIZE=5 SMTPUTF8\r\n"), SMTPD_PARSE_OK);
    ck_assert_int_eq(parse("RSET\r\n"), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "");
    ck_assert_int_eq(cmd.has_size, 0);
    ck_assert_int_eq(cmd.smtputf8, 0);
    /* error_text may be NULL */
    ck_assert_int_eq(smtpd_parse_command("FOO\r\n", 5, &cmd, NULL), SMTPD_PARSE_UNKNOWN_COMMAND);
    ck_assert_int_eq(smtpd_parse_command(NULL, 0, &cmd, NULL), SMTPD_PARSE_UNKNOWN_COMMAND);
}
END_TEST

START_TEST(test_address_domain)
{
    ck_assert_str_eq(smtpd_address_domain("user@Example.COM"), "Example.COM");
    const char *a = "x@y.example";
    ck_assert_ptr_eq(smtpd_address_domain(a), a + 2);
    ck_assert_str_eq(smtpd_address_domain("u@[192.0.2.1]"), "[192.0.2.1]");
    ck_assert_str_eq(smtpd_address_domain("\"a@b\"@c.example"), "c.example");
    ck_assert_ptr_null(smtpd_address_domain("\"a@b\""));
    ck_assert_ptr_null(smtpd_address_domain("\"a@b"));
    ck_assert_ptr_null(smtpd_address_domain("postmaster"));
    ck_assert_ptr_null(smtpd_address_domain("user@"));
    ck_assert_ptr_null(smtpd_address_domain(""));
    ck_assert_ptr_null(smtpd_address_domain(NULL));
}
END_TEST

/* Every prefix and every single-byte corruption of a few lines: no crash,
 * no read past len (ASan), and a valid status. */
START_TEST(test_robust_prefixes)
{
    static const char *lines[] = {
        "MAIL FROM:<@a.example,@b.example:\"q\\\"x\"@[IPv6:::1]> SIZE=1 BODY=8BITMIME SMTPUTF8\r\n",
        "RCPT TO:<Postmaster> NOTIFY=NEVER\r\n",
        "EHLO [IPv6:2001:db8::1]\r\n",
    };
    for (size_t l = 0; l < sizeof(lines) / sizeof(lines[0]); l++) {
        size_t n = strlen(lines[l]);
        for (size_t k = 0; k <= n; k++) {
            enum smtpd_parse_status st = parse_exact(lines[l], k);
            ck_assert_int_le(st, SMTPD_PARSE_BAD_PARAMETER);
        }
        char buf[256];
        for (size_t k = 0; k < n; k++) {
            for (int b = 0; b < 256; b += 17) {
                memcpy(buf, lines[l], n);
                buf[k] = (char)b;
                enum smtpd_parse_status st = parse_exact(buf, n);
                ck_assert_int_le(st, SMTPD_PARSE_BAD_PARAMETER);
                if (st == SMTPD_PARSE_OK)
                    ck_assert_uint_lt(strlen(cmd.path), SMTPD_PATH_MAX);
            }
        }
    }
    ck_assert_int_eq(parse(lines[0]), SMTPD_PARSE_OK);
    ck_assert_str_eq(cmd.path, "\"q\\\"x\"@[IPv6:::1]");
    ck_assert_int_eq(cmd.body, SMTPD_BODY_8BITMIME);
    ck_assert_int_eq(cmd.smtputf8, 1);
}
END_TEST

static Suite *parse_suite(void)
{
    Suite *s = suite_create("smtp_parse");
    TCase *tc = tcase_create("commands");
    tcase_add_test(tc, test_helo_ehlo);
    tcase_add_test(tc, test_helo_bad);
    tcase_add_test(tc, test_verbs_case_insensitive);
    tcase_add_test(tc, test_simple_verbs);
    tcase_add_test(tc, test_data_with_arg);
    tcase_add_test(tc, test_vrfy_without_arg);
    tcase_add_test(tc, test_unknown_verb);
    tcase_add_test(tc, test_line_ends);
    tcase_add_test(tc, test_line_length_boundary);
    tcase_add_test(tc, test_embedded_nul_and_controls);
    tcase_add_test(tc, test_out_reset);
    suite_add_tcase(s, tc);

    tc = tcase_create("paths");
    tcase_add_test(tc, test_mail_basic);
    tcase_add_test(tc, test_null_path);
    tcase_add_test(tc, test_source_route);
    tcase_add_test(tc, test_bad_brackets);
    tcase_add_test(tc, test_bad_addresses);
    tcase_add_test(tc, test_quoted_local_part);
    tcase_add_test(tc, test_path_too_long);
    tcase_add_test(tc, test_rcpt_postmaster);
    tcase_add_test(tc, test_mail_utf8_addresses);
    tcase_add_test(tc, test_address_domain);
    suite_add_tcase(s, tc);

    tc = tcase_create("parameters");
    tcase_add_test(tc, test_mail_size);
    tcase_add_test(tc, test_mail_body_and_utf8);
    tcase_add_test(tc, test_bad_params);
    tcase_add_test(tc, test_rcpt_params);
    tcase_add_test(tc, test_robust_prefixes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(parse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
