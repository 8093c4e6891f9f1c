/* vipmta.h: umbrella header for module authors: the whole native public ABI. */
#ifndef VIPMTA_H
#define VIPMTA_H
#include "vipmta_abi.h"
#include "vipmta_log.h"
#include "vipmta_binding.h"
#include "domain_record.h"
#include "vipmta_value.h"
#include "vipmta_module.h"
#include "vipmta_options.h"
#include "vipmta_event.h"
#include "vipmta_hook.h"
#include "hooks/core/connection_post_bind.h"
#include "vipmta_tls.h"
#endif
