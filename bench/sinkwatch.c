/* sinkwatch.c: reads smtp-sink -c counters on stdin, stamps the time the Nth message arrived, reports the final count. */
/*
 * Built by the bench scripts with cc (not part of the autotools build).
 *
 *   smtp-sink -c ... > FIFO &   sinkwatch TARGET STAMPFILE < FIFO > FINALFILE
 *
 * smtp-sink -c writes "sess=A quit=B mesg=C\r" each time a session ends, a
 * QUIT is executed or a message's "." is received, flushed each time. This
 * reads those records as they come; the first time mesg reaches TARGET it
 * writes the wall-clock time (CLOCK_REALTIME, "SECONDS.NANOS") to STAMPFILE
 * (atomically: STAMPFILE.tmp then rename), so the timing does not depend on
 * how often a script polls. It keeps reading until smtp-sink exits (EOF), then
 * prints "mesg=C sess=A" with the last counters seen, so a shortfall or
 * duplicates show. While running it also rewrites STAMPFILE.progress with
 * the current message count (at most every 0.2 s), so a script can tell a
 * stalled relay from a slow one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned long field(const char *rec, const char *name, int *found)
{
    const char *p = strstr(rec, name);
    if (!p)
        return 0;
    *found = 1;
    return strtoul(p + strlen(name), NULL, 10);
}

static void stamp(const char *path)
{
    struct timespec ts;
    char tmp[4096];
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "sinkwatch: %s: %s\n", tmp, strerror(errno));
        return;
    }
    fprintf(f, "%lld.%09ld\n", (long long)ts.tv_sec, ts.tv_nsec);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        fprintf(stderr, "sinkwatch: %s: %s\n", path, strerror(errno));
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(const char *path, unsigned long mesg)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "%lu\n", mesg);
    fclose(f);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sinkwatch TARGET STAMPFILE\n");
        return 2;
    }
    unsigned long target = strtoul(argv[1], NULL, 10);
    const char *stampfile = argv[2];
    unsigned long mesg = 0, sess = 0;
    int reached = 0;
    char rec[512];
    size_t len = 0;
    char buf[8192];
    char progfile[4096];
    double last_progress = 0;
    snprintf(progfile, sizeof progfile, "%s.progress", stampfile);
    progress(progfile, 0);

    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            char c = buf[i];
            if (c != '\r' && c != '\n') {
                if (len < sizeof rec - 1)
                    rec[len++] = c;
                continue;
            }
            rec[len] = '\0';
            len = 0;
            int has_m = 0, has_s = 0;
            unsigned long m = field(rec, "mesg=", &has_m);
            unsigned long s = field(rec, "sess=", &has_s);
            if (has_m)
                mesg = m;
            if (has_s)
                sess = s;
            if (!reached && has_m && mesg >= target) {
                stamp(stampfile);
                reached = 1;
            }
            if (has_m && mono_s() - last_progress >= 0.2) {
                progress(progfile, mesg);
                last_progress = mono_s();
            }
        }
    }
    progress(progfile, mesg);
    printf("mesg=%lu sess=%lu\n", mesg, sess);
    return 0;
}
