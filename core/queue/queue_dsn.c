/* queue_dsn.c: bounces: composes a DSN for a failed recipient, spools it and queues it once durable. */
#include "queue_internal.h"
#include "config/config_current.h"
#include "queue_dsn_compose.h"
#include "log/log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads the original's header section (up to the first empty line, without
 * it; at most QUEUE_DSN_HEADER_MAX, cut at a line end). *len 0 when unreadable. */
static char *queue_dsn_headers(const char *id, size_t *len)
{
    *len = 0;
    int fd = spool_open_body(id);
    if (fd < 0)
        return NULL;
    char *buf = malloc(QUEUE_DSN_HEADER_MAX);
    size_t have = 0;
    while (buf && have < QUEUE_DSN_HEADER_MAX) {
        ssize_t n = read(fd, buf + have, QUEUE_DSN_HEADER_MAX - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        /* stop reading once the end of the headers is in */
        if (memmem(buf, have, "\r\n\r\n", 4) || memmem(buf, have, "\n\n", 2))
            break;
    }
    close(fd);
    if (!buf)
        return NULL;
    size_t end = have;
    if (have >= 2 && buf[0] == '\r' && buf[1] == '\n')
        end = 0; /* no header section at all */
    else if (have >= 1 && buf[0] == '\n')
        end = 0;
    else {
        char *crlf = memmem(buf, have, "\r\n\r\n", 4);
        char *lf = memmem(buf, have, "\n\n", 2);
        if (crlf && (!lf || crlf < lf))
            end = (size_t)(crlf - buf) + 2;
        else if (lf)
            end = (size_t)(lf - buf) + 1;
        else {
            /* no end within the cap (or the body is all headers): whole lines only */
            char *nl = memrchr(buf, '\n', have);
            end = nl ? (size_t)(nl - buf) + 1 : 0;
        }
    }
    *len = end;
    return buf;
}

static void queue_dsn_committed(void *arg, int error)
{
    struct spool_envelope *env = arg;
    if (error) {
        log_write("queue", VIPMTA_LOG_ERROR, "DSN %s to <%s>: cannot spool it: %s", env->id,
                  env->rcpts[0].address, strerror(error));
        spool_envelope_free(env);
        return;
    }
    queue_add(env);
}

static char *queue_strdup(const char *s)
{
    return strdup(s ? s : "");
}

void queue_dsn_send(const struct queue_message *msg, const char *rcpt, const char *reply)
{
    const struct vipmta_config *cfg = config_current();
    const char *host = cfg && cfg->hostname ? cfg->hostname : "localhost";
    size_t hlen = 0, len = 0;
    char *headers = queue_dsn_headers(msg->id, &hlen);

    struct queue_dsn_recipient dr = {
        .address = rcpt,
        .status = NULL,
        .diagnostic = reply,
        .remote_mta = NULL,
    };
    struct queue_dsn_request req = {
        .reporting_mta = host,
        .queue_id = msg->id,
        .original_sender = msg->sender,
        .arrival = msg->received,
        .rcpts = &dr,
        .rcpt_count = 1,
        .original_headers = hlen ? headers : NULL,
        .original_headers_len = hlen,
    };
    char *text = queue_dsn_compose(&req, &len);
    free(headers);
    if (!text) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: DSN for <%s>: out of memory composing it",
                  msg->id, rcpt);
        return;
    }

    struct spool_writer *w = spool_writer_open();
    if (!w || spool_writer_write(w, text, len) != 0) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: DSN for <%s>: cannot spool it: %s", msg->id,
                  rcpt, strerror(errno));
        spool_writer_abort(w);
        free(text);
        return;
    }
    free(text);

    struct spool_envelope *env = calloc(1, sizeof(*env));
    const char *binding = config_get_binding_name_from_id(msg->binding);
    if (env) {
        env->received = time(NULL);
        env->client_addr = queue_strdup("");
        env->helo = queue_strdup(host);
        env->sender = queue_strdup("");
        env->binding = queue_strdup(binding ? binding : "default");
        env->is_dsn = 1;
        env->rcpts = calloc(1, sizeof(*env->rcpts));
        if (env->rcpts) {
            env->rcpt_count = 1;
            env->rcpts[0].address = queue_strdup(msg->sender);
        }
    }
    if (!env || !env->client_addr || !env->helo || !env->sender || !env->binding ||
        !env->rcpts || !env->rcpts[0].address) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: DSN for <%s>: out of memory", msg->id, rcpt);
        spool_envelope_free(env);
        spool_writer_abort(w);
        return;
    }
    char dsn_id[SPOOL_ID_LEN + 1];
    memcpy(dsn_id, spool_writer_id(w), sizeof(dsn_id));
    if (spool_writer_commit(w, env, queue_dsn_committed, env) != 0) {
        log_write("queue", VIPMTA_LOG_ERROR, "%s: DSN for <%s>: cannot spool it: %s", msg->id,
                  rcpt, strerror(errno));
        spool_envelope_free(env);
        return;
    }
    log_write("queue", VIPMTA_LOG_INFO, "%s: recipient <%s> failed: DSN %s to <%s>", msg->id,
              rcpt, dsn_id, msg->sender);
}
