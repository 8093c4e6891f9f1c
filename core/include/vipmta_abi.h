/* vipmta_abi.h: version numbers of the vipmta module ABI that modules are checked against. */
#ifndef VIPMTA_ABI_H
#define VIPMTA_ABI_H

/* "VMOD": first word of every module descriptor. */
#define VIPMTA_MODULE_MAGIC 0x564D4F44u

/* Major changes break modules (struct layout, signatures); minor ones only add.
 * A module built against minor M loads in any core with the same major and
 * minor >= M. */
#define VIPMTA_MODULE_ABI_MAJOR 1
#define VIPMTA_MODULE_ABI_MINOR 0

#endif
