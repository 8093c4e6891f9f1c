#!/bin/sh
# term_soak.sh: SIGTERM under load: mail injected non-stop while the daemon is stopped gracefully 10 times and restarted; each stop exits 0, every acknowledged message is delivered, duplicates stay within what was in flight.
# The crash soak's harness with SIGTERM instead of SIGKILL (docs/soak.md); knobs as there.
SOAK_SIGNAL=TERM
SOAK_KILLS=${SOAK_KILLS:-10}
SOAK_SECONDS=${SOAK_SECONDS:-30}
SOAK_EARLY_KILLS=${SOAK_EARLY_KILLS:-0.1}
. "$VIPMTA_TOP_SRCDIR/t/integration/crash_soak.sh"
