/* check_log.c: Check suite for the main log: JSON lines (escaping, fields), text lines, reopening after rotation. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"

static char dir[256];
static char path[300];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "%s/check_log.XXXXXX", TEST_BUILDDIR);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/main.log", dir);
    log_set_level(VIPMTA_LOG_DEBUG);
}

static void teardown(void)
{
    log_close();
    log_set_json(0);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The lines of `file`, each parsed as JSON (NULL-terminated array). */
static json_t **read_json_lines(const char *file, size_t *count)
{
    FILE *f = fopen(file, "r");
    ck_assert_ptr_nonnull(f);
    json_t **out = calloc(64, sizeof(*out));
    char line[8192];
    size_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        size_t len = strlen(line);
        ck_assert_msg(len > 0 && line[len - 1] == '\n', "unterminated line: %s", line);
        line[len - 1] = '\0';
        ck_assert_msg(strchr(line, '\n') == NULL, "a raw newline inside a line");
        json_error_t err;
        json_t *v = json_loads(line, 0, &err);
        ck_assert_msg(v != NULL, "not JSON: %s (%s)", line, err.text);
        ck_assert_int_lt(n, 63);
        out[n++] = v;
    }
    fclose(f);
    *count = n;
    return out;
}

static void free_lines(json_t **lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(lines[i]);
    free(lines);
}

START_TEST(test_json_escaping)
{
    ck_assert_int_eq(log_open_file(path), 0);
    log_set_json(1);
    log_write("core", VIPMTA_LOG_NOTICE, "quote \" backslash \\ newline\nnext\ttab \x01 bell");
    log_write("mymod", VIPMTA_LOG_DEBUG, "bad utf-8 \xff\xfe here, good \xc3\xa9");
    log_write("core", VIPMTA_LOG_ERROR, "%s", "");
    log_close();

    size_t n;
    json_t **lines = read_json_lines(path, &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(json_string_value(json_object_get(lines[0], "msg")),
                     "quote \" backslash \\ newline\nnext\ttab \x01 bell");
    ck_assert_str_eq(json_string_value(json_object_get(lines[0], "level")), "notice");
    ck_assert_str_eq(json_string_value(json_object_get(lines[0], "component")), "core");
    ck_assert_uint_eq(json_object_size(lines[0]), 4);
    ck_assert_ptr_nonnull(json_string_value(json_object_get(lines[0], "ts")));
    ck_assert_str_eq(json_string_value(json_object_get(lines[1], "component")), "mymod");
    ck_assert_str_eq(json_string_value(json_object_get(lines[1], "level")), "debug");
    ck_assert_str_eq(json_string_value(json_object_get(lines[1], "msg")),
                     "bad utf-8 ?? here, good ??");
    ck_assert_str_eq(json_string_value(json_object_get(lines[2], "msg")), "");
    free_lines(lines, n);
}
END_TEST

START_TEST(test_level_filter)
{
    ck_assert_int_eq(log_open_file(path), 0);
    log_set_json(1);
    log_set_level(VIPMTA_LOG_WARNING);
    log_write("core", VIPMTA_LOG_INFO, "hidden");
    log_write("core", VIPMTA_LOG_WARNING, "shown");
    log_close();
    size_t n;
    json_t **lines = read_json_lines(path, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(json_string_value(json_object_get(lines[0], "msg")), "shown");
    free_lines(lines, n);
}
END_TEST

START_TEST(test_text_format)
{
    ck_assert_int_eq(log_open_file(path), 0);
    log_write("smtpd", VIPMTA_LOG_INFO, "hello %d", 42);
    log_close();
    FILE *f = fopen(path, "r");
    char line[512];
    ck_assert_ptr_nonnull(fgets(line, sizeof(line), f));
    fclose(f);
    ck_assert_ptr_nonnull(strstr(line, "Z info [smtpd] hello 42\n"));
}
END_TEST

START_TEST(test_reopen_after_rotation)
{
    char rotated[400], dpath[400], drotated[420];
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    snprintf(dpath, sizeof(dpath), "%s/delivery.jsonl", dir);
    snprintf(drotated, sizeof(drotated), "%s.1", dpath);

    ck_assert_int_eq(log_open_file(path), 0);
    ck_assert_int_eq(log_delivery_open(dpath), 0);
    log_set_json(1);
    log_write("core", VIPMTA_LOG_INFO, "before");
    log_delivery(json_pack("{s:s}", "outcome", "one"));
    ck_assert_int_eq(rename(path, rotated), 0);
    ck_assert_int_eq(rename(dpath, drotated), 0);
    log_write("core", VIPMTA_LOG_INFO, "still the old file");
    ck_assert_int_eq(log_reopen(), 0);
    log_write("core", VIPMTA_LOG_INFO, "after");
    log_delivery(json_pack("{s:s}", "outcome", "two"));
    log_delivery_close();
    log_close();

    size_t n;
    json_t **lines = read_json_lines(rotated, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(json_string_value(json_object_get(lines[1], "msg")), "still the old file");
    free_lines(lines, n);
    lines = read_json_lines(path, &n);
    ck_assert_uint_ge(n, 2); /* "log files reopened", "after" */
    ck_assert_str_eq(json_string_value(json_object_get(lines[n - 1], "msg")), "after");
    free_lines(lines, n);
    lines = read_json_lines(drotated, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(json_string_value(json_object_get(lines[0], "outcome")), "one");
    free_lines(lines, n);
    lines = read_json_lines(dpath, &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(json_string_value(json_object_get(lines[0], "outcome")), "two");
    free_lines(lines, n);
}
END_TEST

START_TEST(test_reopen_failure_keeps_old_stream)
{
    char sub[300], file[400];
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(file, sizeof(file), "%s/main.log", sub);
    ck_assert_int_eq(log_open_file(file), 0);
    log_set_json(1);
    char moved[320];
    snprintf(moved, sizeof(moved), "%s/moved", dir);
    ck_assert_int_eq(rename(sub, moved), 0); /* the directory is gone: reopen fails */
    ck_assert_int_eq(log_reopen(), -1);
    log_write("core", VIPMTA_LOG_INFO, "kept");
    log_close();
    char oldfile[400];
    snprintf(oldfile, sizeof(oldfile), "%s/main.log", moved);
    size_t n;
    json_t **lines = read_json_lines(oldfile, &n);
    ck_assert_uint_eq(n, 2); /* the "cannot reopen" error and "kept" */
    ck_assert_str_eq(json_string_value(json_object_get(lines[0], "level")), "error");
    ck_assert_str_eq(json_string_value(json_object_get(lines[1], "msg")), "kept");
    free_lines(lines, n);
}
END_TEST

START_TEST(test_open_failure)
{
    char bad[400];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/log", dir);
    ck_assert_int_eq(log_open_file(bad), -1);
}
END_TEST

/* Never through a symbolic link, never a file with other links. */
START_TEST(test_open_refuses_links)
{
    char target[400], sym[400], hard[400];
    snprintf(target, sizeof(target), "%s/target", dir);
    snprintf(sym, sizeof(sym), "%s/link.log", dir);
    snprintf(hard, sizeof(hard), "%s/hard.log", dir);
    FILE *f = fopen(target, "w");
    ck_assert_ptr_nonnull(f);
    fputs("untouched\n", f);
    fclose(f);
    ck_assert_int_eq(symlink(target, sym), 0);
    ck_assert_int_eq(log_open_file(sym), -1);
    ck_assert_str_eq(log_open_error(errno), "it is a symbolic link (vipmta opens log files only directly)");
    ck_assert_int_eq(link(target, hard), 0);
    ck_assert_int_eq(log_open_file(hard), -1);
    ck_assert_str_eq(log_open_error(errno), "it is not a regular file with a single link");
    ck_assert_int_eq(log_delivery_open(sym), -1);
    struct stat st;
    ck_assert_int_eq(stat(target, &st), 0);
    ck_assert_int_eq(st.st_size, 10); /* nothing appended */
}
END_TEST

/* The spool's threads log while the loop replaces the log file (a reload,
 * SIGHUP): every line lands whole in one of the files, and nothing is
 * written through a stream being closed (ASan would report it). */
static volatile int writers_stop;

static void *log_writer(void *arg)
{
    long id = (long)arg;
    for (long n = 0; !writers_stop; n++)
        log_write("spool", VIPMTA_LOG_INFO, "writer %ld line %ld", id, n);
    return NULL;
}

START_TEST(test_streams_replaced_while_threads_log)
{
    char other[400];
    snprintf(other, sizeof(other), "%s/other.log", dir);
    ck_assert_int_eq(log_open_file(path), 0);
    pthread_t th[4];
    writers_stop = 0;
    for (long i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, log_writer, (void *)i), 0);
    for (int i = 0; i < 400; i++) {
        ck_assert_int_eq(log_open_file(i % 2 ? path : other), 0);
        ck_assert_int_eq(log_reopen(), 0);
    }
    writers_stop = 1;
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    log_close();
    const char *files[2] = {path, other};
    for (int k = 0; k < 2; k++) {
        FILE *f = fopen(files[k], "r");
        ck_assert_ptr_nonnull(f);
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            ck_assert_msg(strchr(line, '\n') && (strstr(line, " info [spool] writer ") ||
                                                 strstr(line, "log files reopened")),
                          "a torn or mixed line: %s", line);
        }
        fclose(f);
    }
}
END_TEST

static Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("main log");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_json_escaping);
    tcase_add_test(tc, test_level_filter);
    tcase_add_test(tc, test_text_format);
    tcase_add_test(tc, test_reopen_after_rotation);
    tcase_add_test(tc, test_reopen_failure_keeps_old_stream);
    tcase_add_test(tc, test_open_failure);
    tcase_add_test(tc, test_open_refuses_links);
    tcase_add_test(tc, test_streams_replaced_while_threads_log);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
