/* config_lines.c: the line of the config file each value of the modules entries starts on (a module names "FILE:LINE" in what it says). */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

/* Path components deeper than this are not recorded. */
#define CONFIG_LINES_DEPTH 16
#define CONFIG_LINES_PATH_MAX 512

struct config_lines_scan {
    const char *p, *end;
    int line;
    /* the path from the root: keys and indices, as text (".key" / "[n]") */
    char path[CONFIG_LINES_PATH_MAX];
    size_t len[CONFIG_LINES_DEPTH + 1];
    int depth;
    int deep;      /* components that did not fit in path */
    struct config_line *out;
    size_t n, cap;
    int failed;
};

static void config_lines_ws(struct config_lines_scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\r' || *s->p == '\n')) {
        if (*s->p == '\n')
            s->line++;
        s->p++;
    }
}

/* Records the value starting here when it is inside modules[I]: its path
 * below the entry ("options.rules[2]"), its line. */
static void config_lines_record(struct config_lines_scan *s)
{
    static const char prefix[] = ".modules[";
    if (s->failed || s->depth > CONFIG_LINES_DEPTH || s->deep ||
        strncmp(s->path, prefix, sizeof(prefix) - 1) != 0)
        return;
    char *end = NULL;
    unsigned long index = strtoul(s->path + sizeof(prefix) - 1, &end, 10);
    if (!end || *end != ']' || !end[1])
        return; /* the entry itself */
    const char *below = end[1] == '.' ? end + 2 : end + 1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct config_line *g = realloc(s->out, cap * sizeof(*g));
        if (!g) {
            s->failed = 1;
            return;
        }
        s->out = g;
        s->cap = cap;
    }
    char *path = strdup(below);
    if (!path) {
        s->failed = 1;
        return;
    }
    s->out[s->n++] = (struct config_line){(size_t)index, path, s->line};
}

/* Appends a component to the path (beyond CONFIG_LINES_DEPTH or the path's
 * room, the path stays its parent's and nothing below is recorded). */
static void config_lines_push(struct config_lines_scan *s, const char *text, size_t n)
{
    size_t at = s->len[s->depth <= CONFIG_LINES_DEPTH ? s->depth : CONFIG_LINES_DEPTH];
    s->depth++;
    if (s->depth > CONFIG_LINES_DEPTH)
        return;
    if (at + n + 1 > sizeof(s->path)) {
        s->len[s->depth] = at;
        s->deep++;
        return;
    }
    memcpy(s->path + at, text, n);
    s->path[at + n] = '\0';
    s->len[s->depth] = at + n;
}

static void config_lines_pop(struct config_lines_scan *s)
{
    if (s->depth <= CONFIG_LINES_DEPTH && s->depth > 0 && s->len[s->depth] == s->len[s->depth - 1])
        s->deep = s->deep ? s->deep - 1 : 0;
    s->depth--;
    if (s->depth <= CONFIG_LINES_DEPTH)
        s->path[s->len[s->depth]] = '\0';
}

/* A string: its text (escapes kept as the character they stand for, other
 * escapes as '?') into buf when given. */
static void config_lines_string(struct config_lines_scan *s, char *buf, size_t size)
{
    size_t o = 0;
    s->p++; /* the opening quote */
    while (s->p < s->end && *s->p != '"') {
        char c = *s->p++;
        if (c == '\\' && s->p < s->end) {
            char e = *s->p++;
            c = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e == 'b' ? '\b'
                : e == 'f' ? '\f' : e == 'u' ? '?' : e;
            if (e == 'u')
                s->p = s->end - s->p >= 4 ? s->p + 4 : s->end;
        }
        if (buf && o + 1 < size)
            buf[o++] = c;
    }
    if (s->p < s->end)
        s->p++; /* the closing quote */
    if (buf && size)
        buf[o] = '\0';
}

static void config_lines_value(struct config_lines_scan *s);

static void config_lines_object(struct config_lines_scan *s)
{
    s->p++;
    for (;;) {
        config_lines_ws(s);
        if (s->p >= s->end || *s->p == '}')
            break;
        if (*s->p != '"')
            return;
        char key[CONFIG_LINES_PATH_MAX - 1];
        key[0] = '.';
        config_lines_string(s, key + 1, sizeof(key) - 1);
        config_lines_ws(s);
        if (s->p < s->end && *s->p == ':')
            s->p++;
        config_lines_push(s, key, strlen(key));
        config_lines_value(s);
        config_lines_pop(s);
        config_lines_ws(s);
        if (s->p < s->end && *s->p == ',')
            s->p++;
    }
    if (s->p < s->end)
        s->p++;
}

static void config_lines_array(struct config_lines_scan *s)
{
    s->p++;
    for (size_t i = 0;; i++) {
        config_lines_ws(s);
        if (s->p >= s->end || *s->p == ']')
            break;
        char index[32];
        int n = snprintf(index, sizeof(index), "[%zu]", i);
        config_lines_push(s, index, (size_t)n);
        config_lines_value(s);
        config_lines_pop(s);
        config_lines_ws(s);
        if (s->p < s->end && *s->p == ',')
            s->p++;
    }
    if (s->p < s->end)
        s->p++;
}

static void config_lines_value(struct config_lines_scan *s)
{
    config_lines_ws(s);
    if (s->p >= s->end)
        return;
    config_lines_record(s);
    const char *before = s->p;
    switch (*s->p) {
    case '{':
        config_lines_object(s);
        break;
    case '[':
        config_lines_array(s);
        break;
    case '"':
        config_lines_string(s, NULL, 0);
        break;
    default: /* a number, true, false, null */
        while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
            s->p++;
        break;
    }
    if (s->p == before)
        s->p = s->end; /* not JSON after all: stop */
}

int config_lines_scan(const char *text, size_t len, struct config_line **out, size_t *count)
{
    struct config_lines_scan s = {.p = text, .end = text + len, .line = 1};
    config_lines_value(&s);
    if (s.failed) {
        config_lines_free(s.out, s.n);
        *out = NULL;
        *count = 0;
        return -1;
    }
    *out = s.out;
    *count = s.n;
    return 0;
}

void config_lines_free(struct config_line *lines, size_t count)
{
    for (size_t i = 0; lines && i < count; i++)
        free(lines[i].path);
    free(lines);
}
