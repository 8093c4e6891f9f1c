/* main.c: the vipmta command line: run the daemon, check a config (-t), list modules (-M). */
#include "binding/binding_table.h"
#include "config/config.h"
#include "config/config_current.h"
#include "daemon/daemon.h"
#include "queue/queue_domain.h"
#include "plugin/plugin_hooks.h"
#include "log/log.h"
#include "plugin/plugin_loader.h"
#include "daemon/daemon_priv.h"
#include "tls/tls.h"
#include "vipmta_abi.h"

#include <event2/event.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_CONFIG VIPMTA_SYSCONFDIR "/vipmta/vipmta.json"

enum main_mode { MODE_RUN, MODE_TEST, MODE_MODULES };

static void main_usage(FILE *out)
{
    fprintf(out,
            "Usage: vipmta [-c FILE] [-f] [-t | -M | -V | -h]\n"
            "vipmta is a mail transfer agent core: it accepts mail over SMTP, spools it\n"
            "durably and delivers it from chosen source addresses (MultiVIP bindings).\n"
            "\n"
            "  -c FILE  configuration file (default " DEFAULT_CONFIG ")\n"
            "  -f       stay in the foreground and log to stderr (default: detach, log to\n"
            "           syslog, facility mail); log_file in the config takes precedence\n"
            "  -t       check the configuration and the modules it enables, print \"ok\"\n"
            "           or every error, and exit non-zero on error; starts nothing\n"
            "  -M       list the modules the configuration loads, with their versions and\n"
            "           the hooks each registers, in chain order\n"
            "  -V       print the version and the module ABI version\n"
            "  -h       show this help\n"
            "\n"
            "Documentation: vipmta(8), vipmta.json(5), README.md, docs/operations.md.\n");
}

/* Loads modules as the daemon would, without starting anything. */
static int main_check(struct vipmta_config *cfg, enum main_mode mode)
{
    struct config_errors errs = {0};
    int rc = 0;

    config_install(config_ref(cfg)); /* what modules see as the config in force */
    if (binding_table_build(cfg, &errs) != 0)
        rc = -1;
    /* valid, but probably not meant: said, without failing the check */
    struct config_errors warnings = {0};
    if (rc == 0)
        binding_table_check_addresses(&warnings);
    config_check_warnings(cfg, &warnings);
    config_errors_print(&warnings, stderr, "warning: ");
    config_errors_clear(&warnings);
    queue_domain_registry_init();
    if (plugin_loader_load(cfg, &errs) != 0)
        rc = -1;
    if (rc == 0 && mode == MODE_MODULES && plugin_loader_init(&errs) != 0)
        rc = -1;
    if (rc == 0 && mode == MODE_MODULES)
        plugin_loader_describe(stdout);
    if (rc != 0)
        config_errors_print(&errs, stderr, NULL);
    else if (mode == MODE_TEST)
        printf("ok\n");
    plugin_loader_unload();
    queue_domain_registry_free();
    binding_table_free();
    config_install(NULL);
    config_errors_clear(&errs);
    return rc == 0 ? 0 : 1;
}

/* Detaches from the terminal. The parent stays until the daemon has
 * started, then exits 0, or prints why it did not start and exits 1: the
 * errors of a start reach whoever started it. In the daemon (the child)
 * returns the pipe's write end for daemon_run; -1 on failure (errno). */
static int main_detach(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid > 0) {
        close(p[1]);
        char buf[4096];
        size_t got = 0;
        ssize_t n;
        int ok = 0, said = 0;
        while ((n = read(p[0], buf, sizeof(buf))) != 0) {
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            if (got == 0 && n == 2 && memcmp(buf, "ok", 2) == 0) {
                ok = 1;
            } else {
                fwrite(buf, 1, (size_t)n, stderr);
                said = 1;
            }
            got += (size_t)n;
        }
        if (!ok && !said)
            fprintf(stderr, "vipmta: the daemon ended during its start without a word (see its "
                    "log: syslog, or log_file)\n");
        _exit(ok ? 0 : 1);
    }
    close(p[0]);
    if (setsid() < 0)
        return -1;
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
    if (chdir("/") != 0)
        return -1;
    return p[1];
}

int main(int argc, char **argv)
{
    const char *config_path = DEFAULT_CONFIG;
    enum main_mode mode = MODE_RUN;
    int foreground = 0;
    int opt;

    while ((opt = getopt(argc, argv, "c:ftMVh")) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'f':
            foreground = 1;
            break;
        case 't':
            mode = MODE_TEST;
            break;
        case 'M':
            mode = MODE_MODULES;
            break;
        case 'V':
            printf("vipmta %s (module ABI %d.%d)\n", PACKAGE_VERSION, VIPMTA_MODULE_ABI_MAJOR,
                   VIPMTA_MODULE_ABI_MINOR);
            return 0;
        case 'h':
            main_usage(stdout);
            return 0;
        default:
            main_usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vipmta: unexpected argument \"%s\" (see vipmta -h)\n", argv[optind]);
        return 2;
    }
    /* SIGTERM, SIGINT and SIGHUP wait until the daemon's handlers are in
     * place (daemon_run unblocks them): a stop or a log rotation that comes
     * while it starts is then handled, instead of killing it outright */
    if (mode == MODE_RUN)
        daemon_block_signals();

    struct config_errors errs = {0};
    /* a reload reads the file again after the daemon moved to "/": the
     * daemon loads it by its absolute name, which the configuration keeps
     * (module entries refer to it for their file:line) */
    char *abs_path = NULL;
    if (mode == MODE_RUN && config_path[0] != '/')
        abs_path = realpath(config_path, NULL);
    struct vipmta_config *cfg = config_load_file(abs_path ? abs_path : config_path, &errs);
    free(abs_path);
    /* certificates, keys and credentials are read now (as root when started
     * as root), so -t checks them too */
    if (cfg && tls_runtime_build(cfg, &errs) != 0) {
        config_release(cfg);
        cfg = NULL;
    }
    if (!cfg) {
        config_errors_print(&errs, stderr, NULL);
        config_errors_clear(&errs);
        if (mode == MODE_RUN)
            fprintf(stderr, "vipmta: not started: fix %s (vipmta -t -c %s checks it)\n",
                    config_path, config_path);
        return 1;
    }
    int level = log_level_from_name(cfg->log_level);
    log_set_level(level < 0 ? VIPMTA_LOG_INFO : (enum vipmta_log_level)level);

    /* the run user and the files it will own: before detaching, so that a
     * refusal reaches the terminal */
    log_set_json(strcmp(cfg->log_format, "json") == 0);
    if (daemon_priv_setup(cfg, mode == MODE_RUN, &errs) != 0 ||
        (mode == MODE_RUN && daemon_priv_check_spool(cfg, &errs) != 0)) {
        config_errors_print(&errs, stderr, NULL);
        config_errors_clear(&errs);
        if (mode == MODE_RUN)
            fprintf(stderr, "vipmta: not started: fix the above (see docs/operations.md)\n");
        config_release(cfg);
        return 1;
    }

    int status;
    if (mode != MODE_RUN) {
        log_set_level(VIPMTA_LOG_WARNING); /* keep -t / -M output to the point */
        status = main_check(cfg, mode);
        config_release(cfg);
        return status;
    }
    int ready_fd = -1;
    if (!foreground) {
        ready_fd = main_detach();
        if (ready_fd < 0) {
            perror("vipmta: cannot detach (use -f to stay in the foreground)");
            config_release(cfg);
            return 1;
        }
        log_use_syslog(1);
    }
    status = daemon_run(cfg, ready_fd); /* takes cfg */
    log_close();
    return status;
}
