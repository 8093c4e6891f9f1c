/* daemon_priv.h: privileges: the run user, the start-up ownership checks, dropping root after binding. */
#ifndef VIPMTA_CORE_DAEMON_PRIV_H
#define VIPMTA_CORE_DAEMON_PRIV_H

#include <sys/types.h>
#include "config/config.h"
#include "config/config_errors.h"

/* The environment variable that stands for "run_as_root": true (test
 * harnesses, containers that have no other user). */
#define DAEMON_PRIV_RUN_AS_ROOT_ENV "VIPMTA_RUN_AS_ROOT"

/* Resolves `user` and `group` (unknown names are errors). With `run` set
 * (the daemon is about to start) also refuses root without `user` unless
 * run_as_root, and `user` when not started as root (unless already that
 * user). 0, or -1 with the reasons in `errs`. */
int daemon_priv_setup(const struct vipmta_config *cfg, int run, struct config_errors *errs);
/* Checks spool_dir before the spool opens: created 0700 for the run user
 * when missing; otherwise it must be a directory (not a symbolic link) owned
 * by the run user and not writable by group or others. Its queue/ and
 * quarantine/ are checked the same way when they exist (the spool creates
 * them as the run user). */
int daemon_priv_check_spool(const struct vipmta_config *cfg, struct config_errors *errs);
/* Non-zero when files owned by `uid` may hold code we run (modules): root,
 * the user we run as now, or the configured run user. */
int daemon_priv_owner_trusted(uid_t uid);
/* After the listeners are bound: becomes the run user for good (supplementary
 * groups, gid, uid) and verifies that root cannot be regained. A no-op
 * without a user to drop to. 0, or -1 with the reason in `errs`. */
int daemon_priv_drop(struct config_errors *errs);

#endif
