/* daemon_priv.c: privileges: the run user, the start-up ownership checks, dropping root after binding. */
#include "daemon_priv.h"
#include "log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

static int have_user;         /* `user` resolved */
static int will_drop;         /* started as root with `user`: daemon_priv_drop switches */
static uid_t run_uid;
static gid_t run_gid;
static char run_user[65];
static char run_group[65];

int daemon_priv_setup(const struct vipmta_config *cfg, int run, struct config_errors *errs)
{
    int root = geteuid() == 0;
    size_t before = errs->count;

    have_user = will_drop = 0;
    if (cfg->user) {
        errno = 0;
        struct passwd *pw = getpwnam(cfg->user);
        if (!pw) {
            config_errors_add(errs, "user: no user \"%s\" on this system (create it, e.g. useradd "
                       "--system --no-create-home --shell /usr/sbin/nologin %s, or fix the name)",
                       cfg->user, cfg->user);
        } else if (pw->pw_uid == 0) {
            config_errors_add(errs, "user: \"%s\" is root (uid 0), which drops nothing: name an "
                       "unprivileged user, or remove \"user\" and set \"run_as_root\": true",
                       cfg->user);
        } else {
            have_user = 1;
            run_uid = pw->pw_uid;
            run_gid = pw->pw_gid;
            snprintf(run_user, sizeof(run_user), "%s", cfg->user);
            struct group *gr = getgrgid(run_gid);
            snprintf(run_group, sizeof(run_group), "%s", gr ? gr->gr_name : "");
        }
    }
    if (cfg->group) {
        struct group *gr = getgrnam(cfg->group);
        if (!gr) {
            config_errors_add(errs, "group: no group \"%s\" on this system (create it with groupadd "
                       "--system %s, or fix the name)", cfg->group, cfg->group);
            have_user = 0;
        } else if (gr->gr_gid == 0) {
            config_errors_add(errs, "group: \"%s\" is gid 0 (root's group): name an unprivileged "
                       "group, or leave \"group\" out to use the user's own group", cfg->group);
            have_user = 0;
        } else {
            run_gid = gr->gr_gid;
            snprintf(run_group, sizeof(run_group), "%s", gr->gr_name);
        }
    }
    if (have_user && !cfg->group && run_gid == 0) {
        config_errors_add(errs, "user: \"%s\" has gid 0 (root's group) as its login group: set "
                   "\"group\" to an unprivileged group", cfg->user);
        have_user = 0;
    }
    if (!run || errs->count > before)
        return errs->count > before ? -1 : 0;

    if (root && !cfg->user) {
        const char *env = getenv(DAEMON_PRIV_RUN_AS_ROOT_ENV);
        if (!cfg->run_as_root && !(env && strcmp(env, "1") == 0)) {
            config_errors_add(errs, "refusing to run as root: set \"user\" (and optionally \"group\") "
                       "in %s to the account vipmta should switch to once its ports are bound, "
                       "e.g. \"user\": \"vipmta\"; or set \"run_as_root\": true to keep "
                       "running as root (not recommended)", cfg->path ? cfg->path : "the config");
            return -1;
        }
        return 0;
    }
    if (have_user && !root) {
        if (geteuid() == run_uid && getuid() == run_uid)
            return 0; /* already that user: nothing to drop */
        config_errors_add(errs, "user: cannot switch to \"%s\": vipmta was not started as root (start "
                   "it as root so it can bind its ports and then switch, or remove \"user\" to "
                   "run as the current user)", cfg->user);
        return -1;
    }
    will_drop = root && have_user;
    return 0;
}

/* The user the daemon runs as once started, for messages and checks. */
static void daemon_priv_effective(uid_t *uid, gid_t *gid, char *name, size_t len)
{
    if (have_user) {
        *uid = run_uid;
        *gid = run_gid;
        snprintf(name, len, "%s", run_user);
        return;
    }
    *uid = geteuid();
    *gid = getegid();
    struct passwd *pw = getpwuid(*uid);
    if (pw)
        snprintf(name, len, "%s", pw->pw_name);
    else
        snprintf(name, len, "%u", (unsigned)*uid);
}

static char *daemon_priv_owner_name(uid_t uid, char *buf, size_t len)
{
    struct passwd *pw = getpwuid(uid);
    if (pw)
        snprintf(buf, len, "%s", pw->pw_name);
    else
        snprintf(buf, len, "uid %u", (unsigned)uid);
    return buf;
}

/* One directory of the spool: created (0700, the run user's) when `create`
 * is set and it is missing, else checked when it exists: a directory, not a
 * symbolic link, owned by the run user, not writable by group or others. */
static int daemon_priv_check_dir(const char *path, const char *fix_dir, int create,
                                 struct config_errors *errs)
{
    uid_t uid;
    gid_t gid;
    char user[80], owner[80];
    struct stat st;

    daemon_priv_effective(&uid, &gid, user, sizeof(user));
    if (create && mkdir(path, 0700) == 0) {
        /* chown what was just made, through a descriptor: never a path a
         * symbolic link could have replaced meanwhile */
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0 || (will_drop && fchown(fd, uid, gid) != 0)) {
            config_errors_add(errs, "spool_dir: cannot give %s to user %s: %s", path, user,
                              strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        close(fd);
        return 0;
    }
    if (create && errno != EEXIST) {
        config_errors_add(errs, "spool_dir: cannot create %s: %s (create its parent directory, or "
                   "fix spool_dir)", path, strerror(errno));
        return -1;
    }
    if (lstat(path, &st) != 0) {
        if (!create && errno == ENOENT)
            return 0; /* created later, by the run user */
        config_errors_add(errs, "spool_dir: cannot use %s: %s", path, strerror(errno));
        return -1;
    }
    if (S_ISLNK(st.st_mode)) {
        config_errors_add(errs, "spool_dir: %s is a symbolic link: refusing it; give spool_dir the "
                          "real directory, or replace the link with a directory", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        config_errors_add(errs, "spool_dir: %s is not a directory (remove it, or fix spool_dir)", path);
        return -1;
    }
    if (st.st_uid != uid) {
        config_errors_add(errs, "spool_dir: %s is owned by %s, not by %s, the user vipmta runs as: "
                   "refusing it; run chown -R %s: %s && chmod 700 %s", path,
                   daemon_priv_owner_name(st.st_uid, owner, sizeof(owner)), user, user, fix_dir,
                   fix_dir);
        return -1;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        config_errors_add(errs, "spool_dir: %s is writable by %s (mode %04o): anyone who can write "
                   "there can forge or remove mail; refusing it; run chown %s: %s && chmod 700 "
                   "%s", path, (st.st_mode & S_IWOTH) ? "everyone" : "its group",
                   (unsigned)(st.st_mode & 07777), user, path, path);
        return -1;
    }
    return 0;
}

int daemon_priv_check_spool(const struct vipmta_config *cfg, struct config_errors *errs)
{
    static const char *const subs[] = {"queue", "quarantine"};
    char path[4096];

    if (daemon_priv_check_dir(cfg->spool_dir, cfg->spool_dir, 1, errs) != 0)
        return -1;
    /* the folders inside belong to the run user: checked here when they
     * exist, created by the spool once the daemon runs as that user */
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", cfg->spool_dir, subs[i]);
        if (daemon_priv_check_dir(path, cfg->spool_dir, 0, errs) != 0)
            return -1;
    }
    return 0;
}

int daemon_priv_owner_trusted(uid_t uid)
{
    return uid == 0 || uid == geteuid() || (have_user && uid == run_uid);
}

int daemon_priv_drop(struct config_errors *errs)
{
    if (!will_drop)
        return 0;
    if (initgroups(run_user, run_gid) != 0) {
        config_errors_add(errs, "user: cannot set the supplementary groups of %s: %s", run_user,
                   strerror(errno));
        return -1;
    }
    if (setgid(run_gid) != 0) {
        config_errors_add(errs, "group: cannot switch to gid %u: %s", (unsigned)run_gid,
                   strerror(errno));
        return -1;
    }
    if (setuid(run_uid) != 0) {
        config_errors_add(errs, "user: cannot switch to %s (uid %u): %s", run_user, (unsigned)run_uid,
                   strerror(errno));
        return -1;
    }
    /* for good: every id is the run user's and root cannot be had back */
    uid_t ru, eu, su;
    gid_t rg, eg, sg;
    if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || ru != run_uid ||
        eu != run_uid || su != run_uid || rg != run_gid || eg != run_gid || sg != run_gid ||
        setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) {
        config_errors_add(errs, "user: dropping privileges to %s did not hold (root could be "
                   "regained): refusing to run", run_user);
        return -1;
    }
#if defined(__SANITIZE_ADDRESS__)
    /* sanitizer builds only: LeakSanitizer's exit check needs to trace the
     * process, which a process that changed its uid may not be */
    prctl(PR_SET_DUMPABLE, 1);
#endif
    log_write("core", VIPMTA_LOG_NOTICE, "running as user %s (uid %u), group %s (gid %u)",
              run_user, (unsigned)run_uid, run_group[0] ? run_group : "?", (unsigned)run_gid);
    return 0;
}
