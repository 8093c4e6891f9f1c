/* plugin_message.c: the message handle modules get (ec_message): envelope and content accessors, header fields added at acceptance, the session and reply accessors. */
#include "plugin_message.h"
#include "ec_message.h"
#include "binding/binding_choose.h"
#include "binding/binding_table.h"
#include "log/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* RFC 5322 2.1.1: a line is at most 998 octets without its CRLF. */
#define PLUGIN_MESSAGE_LINE_MAX 998
/* A header field name: at most this long (RFC 5322 leaves it to the line limit). */
#define PLUGIN_MESSAGE_NAME_MAX 76
/* The header section is read this much at a time. */
#define PLUGIN_MESSAGE_READ_CHUNK 16384

static void plugin_message_common(ec_message *msg, enum plugin_message_kind kind,
                                  const char *id, const char *sender)
{
    memset(msg, 0, sizeof(*msg));
    msg->kind = kind;
    msg->id = id;
    msg->sender = sender ? sender : "";
    msg->binding = EC_BINDING_SLOT_UNBOUND;
    msg->exclude = EC_BINDING_SLOT_UNBOUND;
    msg->body_fd = -1;
}

void plugin_message_init_accept(ec_message *msg, const char *id, const char *sender,
                                const struct spool_rcpt *rcpts, size_t rcpt_count,
                                const struct spool_writer *writer, uint64_t body_size)
{
    plugin_message_common(msg, PLUGIN_MESSAGE_ACCEPT, id, sender);
    msg->rcpts = rcpts;
    msg->rcpt_count = rcpt_count;
    msg->writer = writer;
    msg->body_size = body_size;
    msg->added_owned = 1;
    msg->locking = pthread_mutex_init(&msg->lock, NULL) == 0;
}

void plugin_message_init_queued(ec_message *msg, const char *id, const char *sender,
                                const char *rcpt, ec_binding_slot binding, const char *group,
                                uint64_t body_size, const char *added, size_t added_len)
{
    plugin_message_common(msg, PLUGIN_MESSAGE_QUEUED, id, sender);
    msg->one.address = (char *)(uintptr_t)rcpt;
    msg->rcpts = &msg->one;
    msg->rcpt_count = 1;
    msg->binding = binding;
    msg->group = group;
    msg->body_size = body_size;
    msg->added = (char *)(uintptr_t)added;
    msg->added_len = added_len;
    for (size_t i = 0; i + 2 < added_len; i++)
        msg->added_count += added[i] == '\r' && added[i + 1] == '\n' && added[i + 2] != ' ' &&
                            added[i + 2] != '\t';
    msg->added_count += added_len > 0;
}

void plugin_message_release(ec_message *msg)
{
    if (msg->own_fd && msg->body_fd >= 0)
        close(msg->body_fd);
    msg->body_fd = -1;
    msg->own_fd = 0;
    if (msg->added_owned)
        free(msg->added);
    msg->added = NULL;
    msg->added_len = msg->added_cap = msg->added_count = 0;
    if (msg->locking)
        pthread_mutex_destroy(&msg->lock);
    msg->locking = 0;
}

char *plugin_message_take_added(ec_message *msg, size_t *len)
{
    char *added = msg->added_len && msg->added_owned ? msg->added : NULL;
    *len = added ? msg->added_len : 0;
    if (msg->added_owned && !added)
        free(msg->added);
    msg->added = NULL;
    msg->added_len = msg->added_cap = msg->added_count = 0;
    return added;
}

static void plugin_message_lock(const ec_message *msg)
{
    if (msg->locking)
        pthread_mutex_lock(&((ec_message *)(uintptr_t)msg)->lock);
}

static void plugin_message_unlock(const ec_message *msg)
{
    if (msg->locking)
        pthread_mutex_unlock(&((ec_message *)(uintptr_t)msg)->lock);
}

/* ---- the envelope ---- */

const char *vipmta_message_id(const ec_message *msg)
{
    return msg ? msg->id : NULL;
}

const char *vipmta_message_sender(const ec_message *msg)
{
    return msg ? msg->sender : NULL;
}

size_t vipmta_message_recipient_count(const ec_message *msg)
{
    return msg ? msg->rcpt_count : 0;
}

const char *vipmta_message_recipient(const ec_message *msg, size_t index)
{
    if (!msg || index >= msg->rcpt_count)
        return NULL;
    return msg->rcpts[index].address;
}

ec_binding_slot vipmta_message_binding(const ec_message *msg)
{
    if (!msg)
        return EC_BINDING_SLOT_UNBOUND;
    plugin_message_lock(msg);
    ec_binding_slot slot = msg->binding;
    plugin_message_unlock(msg);
    return slot;
}

const char *vipmta_message_binding_group(const ec_message *msg)
{
    if (!msg)
        return NULL;
    plugin_message_lock(msg);
    const char *group = msg->group;
    plugin_message_unlock(msg);
    return group;
}

ec_binding_slot vipmta_message_excluded_binding(const ec_message *msg)
{
    return msg ? msg->exclude : EC_BINDING_SLOT_UNBOUND;
}

int vipmta_message_set_binding(ec_message *msg, ec_binding_slot slot)
{
    const vipmta_binding *b = vipmta_binding_by_slot(slot);
    if (!msg || !b || b->absent) {
        errno = EINVAL;
        return -1;
    }
    plugin_message_lock(msg);
    int rc = 0;
    /* it stays in its group when the binding is a member, else it is pinned */
    const char *group = msg->group && binding_group_has(msg->group, slot) ? msg->group : NULL;
    if (!msg->may_rebind) {
        errno = EPERM;
        rc = -1;
    } else if (msg->rebind) {
        rc = msg->rebind(msg, slot, group);
    }
    if (rc == 0) {
        msg->binding = slot;
        msg->group = group;
    }
    plugin_message_unlock(msg);
    return rc;
}

/* ---- the content ---- */

uint64_t vipmta_message_size(const ec_message *msg)
{
    if (!msg)
        return 0;
    plugin_message_lock(msg);
    uint64_t size = msg->added_len + msg->body_size;
    plugin_message_unlock(msg);
    return size;
}

ssize_t vipmta_message_read(ec_message *msg, uint64_t offset, void *buf, size_t len)
{
    if (!msg || (!buf && len)) {
        errno = EINVAL;
        return -1;
    }
    char *out = buf;
    size_t got = 0;
    plugin_message_lock(msg);
    size_t added = msg->added_len;
    if (offset < added && len) {
        size_t n = added - (size_t)offset;
        if (n > len)
            n = len;
        memcpy(out, msg->added + offset, n);
        got = n;
    }
    plugin_message_unlock(msg);
    if (got == len)
        return (ssize_t)got;
    uint64_t body_off = offset + got - added;
    if (body_off >= msg->body_size)
        return (ssize_t)got;
    if (msg->writer) {
        while (got < len && body_off < msg->body_size) {
            ssize_t n = spool_writer_pread(msg->writer, out + got, len - got, body_off);
            if (n < 0)
                return got ? (ssize_t)got : -1;
            if (n == 0)
                break;
            got += (size_t)n;
            body_off += (uint64_t)n;
        }
        return (ssize_t)got;
    }
    if (msg->body_fd < 0) {
        msg->body_fd = spool_open_body(msg->id);
        if (msg->body_fd < 0)
            return got ? (ssize_t)got : -1;
        msg->own_fd = 1;
    }
    size_t want = len - got;
    if (want > msg->body_size - body_off)
        want = (size_t)(msg->body_size - body_off);
    while (want) {
        ssize_t n = pread(msg->body_fd, out + got, want, (off_t)body_off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return got ? (ssize_t)got : -1;
        if (n == 0)
            break;
        got += (size_t)n;
        body_off += (uint64_t)n;
        want -= (size_t)n;
    }
    return (ssize_t)got;
}

char *vipmta_message_get_headers(ec_message *msg, size_t *len)
{
    size_t have = 0, cap = 0, scanned = 0, end = 0;
    char *buf = NULL;
    int found = 0;

    if (len)
        *len = 0;
    if (!msg) {
        errno = EINVAL;
        return NULL;
    }
    while (!found && have < VIPMTA_MESSAGE_HEADERS_MAX) {
        if (cap - have < PLUGIN_MESSAGE_READ_CHUNK + 1) {
            size_t ncap = cap ? cap * 2 : PLUGIN_MESSAGE_READ_CHUNK * 2;
            if (ncap > VIPMTA_MESSAGE_HEADERS_MAX + 1)
                ncap = VIPMTA_MESSAGE_HEADERS_MAX + 1;
            char *g = realloc(buf, ncap);
            if (!g) {
                free(buf);
                errno = ENOMEM;
                return NULL;
            }
            buf = g;
            cap = ncap;
        }
        size_t room = cap - 1 - have;
        if (room > PLUGIN_MESSAGE_READ_CHUNK)
            room = PLUGIN_MESSAGE_READ_CHUNK;
        if (!room)
            break;
        ssize_t n = vipmta_message_read(msg, have, buf + have, room);
        if (n < 0) {
            int saved = errno;
            free(buf);
            errno = saved;
            return NULL;
        }
        if (n == 0)
            break;
        have += (size_t)n;
        /* the empty line: "\r\n" at the start, or "\r\n\r\n" */
        if (scanned == 0 && have >= 2 && buf[0] == '\r' && buf[1] == '\n') {
            end = 2;
            found = 1;
            break;
        }
        size_t from = scanned > 3 ? scanned - 3 : 0;
        char *hit = have - from >= 4 ? memmem(buf + from, have - from, "\r\n\r\n", 4) : NULL;
        if (hit) {
            end = (size_t)(hit - buf) + 4;
            found = 1;
        }
        scanned = have;
    }
    if (!found) {
        end = have;
        if (have >= VIPMTA_MESSAGE_HEADERS_MAX) {
            /* cut at the last line end within the bound */
            end = VIPMTA_MESSAGE_HEADERS_MAX;
            while (end > 0 && buf[end - 1] != '\n')
                end--;
        }
    }
    if (!buf) {
        buf = malloc(1);
        if (!buf) {
            errno = ENOMEM;
            return NULL;
        }
    }
    buf[end] = '\0';
    if (len)
        *len = end;
    return buf;
}

/* ---- added header fields ---- */

static int plugin_message_reserve(char **out, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need)
        ncap *= 2;
    char *g = realloc(*out, ncap);
    if (!g) {
        errno = ENOMEM;
        return -1;
    }
    *out = g;
    *cap = ncap;
    return 0;
}

int plugin_message_format_field(const char *name, const char *value, char **out, size_t *len,
                                size_t *cap, size_t max_total)
{
    size_t nlen = name ? strlen(name) : 0;
    if (!name || !value || nlen == 0) {
        errno = EINVAL;
        return -1;
    }
    if (nlen > PLUGIN_MESSAGE_NAME_MAX) {
        errno = E2BIG;
        return -1;
    }
    for (size_t i = 0; i < nlen; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 33 || c > 126 || c == ':') {
            errno = EINVAL;
            return -1;
        }
    }
    size_t vlen = strlen(value);
    int wsp_first = value[0] == ' ' || value[0] == '\t';
    /* worst case: every LF becomes CRLF; and a NUL may follow */
    size_t need = nlen + 2 + 2 * vlen + 3;
    size_t start = *len;
    if (start >= max_total) {
        errno = E2BIG;
        return -1;
    }
    if (plugin_message_reserve(out, cap, start + need) != 0)
        return -1;
    char *o = *out + start;
    memcpy(o, name, nlen);
    o += nlen;
    *o++ = ':';
    if (vlen && !wsp_first)
        *o++ = ' ';
    size_t line = (size_t)(o - (*out + start));
    int at_break = 0, content = 0; /* after a line break; the line has more than white space */
    for (size_t i = 0; i < vlen; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '\r' || c == '\n') {
            if (c == '\r' && value[i + 1] != '\n')
                goto bad; /* a bare CR */
            if (c == '\r')
                i++;
            if (at_break && !content)
                goto bad; /* a continuation line of white space only */
            if (value[i + 1] != ' ' && value[i + 1] != '\t')
                goto bad; /* a line break that does not fold */
            *o++ = '\r';
            *o++ = '\n';
            line = 0;
            at_break = 1;
            content = 0;
            continue;
        }
        if ((c < 32 && c != '\t') || c > 126)
            goto bad;
        if (c != ' ' && c != '\t')
            content = 1;
        *o++ = (char)c;
        if (++line > PLUGIN_MESSAGE_LINE_MAX) {
            errno = E2BIG;
            return -1;
        }
    }
    if (at_break && !content)
        goto bad;
    *o++ = '\r';
    *o++ = '\n';
    size_t total = (size_t)(o - *out);
    if (total > max_total) {
        errno = E2BIG;
        return -1;
    }
    *len = total;
    return 0;
bad:
    errno = EINVAL;
    return -1;
}

int vipmta_message_add_header(ec_message *msg, const char *name, const char *value)
{
    if (!msg) {
        errno = EINVAL;
        return -1;
    }
    plugin_message_lock(msg);
    int rc = -1;
    if (!msg->may_add || !msg->added_owned)
        errno = EPERM;
    else if (plugin_message_format_field(name, value, &msg->added, &msg->added_len,
                                         &msg->added_cap, VIPMTA_MESSAGE_ADDED_MAX) == 0) {
        msg->added_count++;
        rc = 0;
    }
    plugin_message_unlock(msg);
    return rc;
}

size_t vipmta_message_added_headers(const ec_message *msg)
{
    if (!msg)
        return 0;
    plugin_message_lock(msg);
    size_t n = msg->added_count;
    plugin_message_unlock(msg);
    return n;
}

vipmta_message_handle *vipmta_message_suspend(ec_message *msg)
{
    if (!msg || !msg->suspend) {
        errno = EPERM;
        return NULL;
    }
    return msg->suspend(msg);
}

/* ---- the session and the reply ---- */

const char *vipmta_accept_client_address(const accept_construct *ac)
{
    return ac ? ac->client_address : NULL;
}

const struct sockaddr *vipmta_accept_client_sockaddr(const accept_construct *ac, socklen_t *len)
{
    if (len)
        *len = ac ? ac->client_len : 0;
    return ac ? (const struct sockaddr *)&ac->client_sockaddr : NULL;
}

const char *vipmta_accept_helo(const accept_construct *ac)
{
    return ac ? ac->helo : NULL;
}

const char *vipmta_accept_auth_user(const accept_construct *ac)
{
    return ac ? ac->auth_user : NULL;
}

const char *vipmta_accept_tls_version(const accept_construct *ac)
{
    return ac ? ac->tls_version : NULL;
}

int plugin_message_reply_ok(const char *reply, char cls)
{
    if (!reply)
        return 0;
    size_t n = strlen(reply);
    if (n < 3 || n >= PLUGIN_MESSAGE_REPLY_MAX || reply[0] != cls || reply[1] < '0' ||
        reply[1] > '9' || reply[2] < '0' || reply[2] > '9')
        return 0;
    if (n > 3 && reply[3] != ' ')
        return 0;
    for (size_t i = 3; i < n; i++)
        if ((unsigned char)reply[i] < 32 || (unsigned char)reply[i] > 126)
            return 0;
    /* an enhanced status code, when one follows, of the same class */
    if (n > 4 && reply[4] >= '0' && reply[4] <= '9' && (reply[4] != cls || reply[5] != '.'))
        return 0;
    return 1;
}

void vipmta_validate_set_reply(validate_context *ctx, const char *reply)
{
    if (!ctx)
        return;
    if (!reply || strlen(reply) >= sizeof(ctx->reply)) {
        ctx->reply[0] = '\0';
        return;
    }
    snprintf(ctx->reply, sizeof(ctx->reply), "%s", reply);
}

const char *vipmta_validate_reply(const validate_context *ctx)
{
    return ctx && ctx->reply[0] ? ctx->reply : NULL;
}

/* ---- Momentum's names (momentum/ec_message.h) ---- */

/* Copies [s, s+n) with a NUL into out (size room): 0, or -1 when it does not fit. */
static int plugin_message_copy(char *out, int room, const char *s, size_t n)
{
    if (!out || room < 0 || n >= (size_t)room)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int ec_message_get_envelope(ec_message *mess, int flags, char *localpart, int llen, char *domain,
                            int dlen, int *isnull)
{
    int which = flags & (EC_MSG_ENV_FROM | EC_MSG_ENV_TO);
    if (!mess || (which != EC_MSG_ENV_FROM && which != EC_MSG_ENV_TO))
        return 0;
    const char *addr = which == EC_MSG_ENV_FROM ? vipmta_message_sender(mess)
                                                 : vipmta_message_recipient(mess, 0);
    if (!addr)
        return 0;
    size_t len = strlen(addr);
    if (flags & EC_MSG_ENV_COMPLETE) {
        if (plugin_message_copy(localpart, llen, addr, len) != 0)
            return 0;
    } else {
        const char *at = strrchr(addr, '@');
        size_t local = at ? (size_t)(at - addr) : len;
        const char *dom = at ? at + 1 : "";
        if (local >= (size_t)(llen > 0 ? llen : 0) || strlen(dom) >= (size_t)(dlen > 0 ? dlen : 0) ||
            !localpart || !domain)
            return 0;
        plugin_message_copy(localpart, llen, addr, local);
        plugin_message_copy(domain, dlen, dom, strlen(dom));
    }
    if (isnull)
        *isnull = len == 0;
    return 1;
}

size_t ec_message_get_message_size(ec_message *mess)
{
    return (size_t)vipmta_message_size(mess);
}

void ec_message_change_binding_slot(ec_message *mess, ec_binding_slot newslot)
{
    if (!mess)
        return;
    if (newslot == EC_BINDING_SLOT_REBIND_IF_NOT_BOUND)
        return; /* a vipmta message always has a binding */
    if (newslot == EC_BINDING_SLOT_REBIND_ALWAYS) {
        const char *group = vipmta_message_binding_group(mess);
        if (!group)
            return;
        newslot = binding_choose(mess, group, EC_BINDING_SLOT_UNBOUND, EC_BINDING_SLOT_UNBOUND);
        if (newslot == EC_BINDING_SLOT_UNBOUND)
            return; /* none can be used now: it keeps its binding */
    }
    if (vipmta_message_set_binding(mess, newslot) != 0)
        log_write("core", VIPMTA_LOG_WARNING, "%s: ec_message_change_binding_slot(%d) refused: %s",
                  mess->id, newslot, errno == EPERM ? "not allowed in this hook"
                                     : errno == EINVAL ? "no such binding" : strerror(errno));
}

ec_binding_slot ec_message_select_binding_by_group(ec_message *msg, const char *group)
{
    (void)msg;
    return binding_group_choose(group);
}
