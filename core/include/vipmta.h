/* vipmta.h: umbrella header for module authors: the whole public ABI. */
#ifndef VIPMTA_H
#define VIPMTA_H
#include "vipmta_abi.h"
#include "vipmta_log.h"
#include "vipmta_binding.h"
#include "domain_record.h"
#include "vipmta_module.h"
#include "vipmta_hook.h"
#include "hooks/core/connection_post_bind.h"
#include "vipmta_tls.h"
#endif
