/* vipmta_abi.h: version numbers of the vipmta module ABI that modules are checked against. */
#ifndef VIPMTA_ABI_H
#define VIPMTA_ABI_H

/* "VMOD": first word of every module descriptor. */
#define VIPMTA_MODULE_MAGIC 0x564D4F44u

/* Major changes break modules (struct layout, signatures); minor ones only add.
 * A module built against minor M loads in any core with the same major and
 * minor >= M. The same numbers are checked for Momentum-style modules
 * (momentum/module.h: EC_MODULE_INIT records them). */
#define VIPMTA_MODULE_ABI_MAJOR 2
#define VIPMTA_MODULE_ABI_MINOR 0

/* Non-zero when the headers a module is compiled against offer ABI
 * major.minor or later, e.g. `#if VIPMTA_ABI_AT_LEAST(2, 1)` around code
 * that uses something added in 2.1. */
#define VIPMTA_ABI_AT_LEAST(major, minor)                                                    \
    (VIPMTA_MODULE_ABI_MAJOR > (major) ||                                                    \
     (VIPMTA_MODULE_ABI_MAJOR == (major) && VIPMTA_MODULE_ABI_MINOR >= (minor)))

#endif
