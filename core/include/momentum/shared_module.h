/* shared_module.h: Momentum's module infrastructure struct (shared_module_infrastructure_8) and its callback types, as Momentum 3 documents them. */
#ifndef VIPMTA_MOMENTUM_SHARED_MODULE_H
#define VIPMTA_MOMENTUM_SHARED_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _generic_module_infrastructure generic_module_infrastructure;
typedef struct _shared_module_infrastructure_8 shared_module_infrastructure_8;
/* The core's record of an instance (opaque: vipmta points it at its own). */
typedef struct _module_instance_data module_instance_data;
/* A configuration generation as one instance sees it (opaque). */
typedef struct _ec_config_header ec_config_header;
typedef struct _ec_string string;

typedef void (*ControlHookFunc)(generic_module_infrastructure *self, string *response,
                                const char *command, int xml);
typedef int (*ModuleConfFunc)(generic_module_infrastructure *, ec_config_header *, const char *,
                              const char *);
typedef int (*ModuleExtendedConfFunc)(generic_module_infrastructure *, ec_config_header *,
                                      const char *, int type, void *data);
typedef int (*ModuleInitFunc)(generic_module_infrastructure *);
typedef int (*ModuleConfSetupFunc)(generic_module_infrastructure *self, int ignoreme);
typedef void (*ModuleEnablerFunc)(generic_module_infrastructure *, int enable);
typedef int (*ModuleCanUnloadFunc)(generic_module_infrastructure *);
typedef int (*ModuleExtendedInitFunc)(generic_module_infrastructure *self,
                                      ec_config_header *transaction, string *output, int flags);

/* Members in Momentum's documented order; initialise it with EC_MODULE_INIT
 * (module.h) first. vipmta calls module_config_setup and module_ext_init;
 * module_control is not called (vipmtactl has no module console); the
 * deprecated callbacks must be NULL (the loader refuses others). */
struct _shared_module_infrastructure_8 {
    uint32_t module_api_version;   /* filled by EC_MODULE_INIT */
    module_instance_data *_inst;   /* the core's; do not touch */
    void *_proxy;                  /* the instance's module_private_data (module.h) */
    const char *module_name;
    const char *module_description;
    ControlHookFunc module_control;
    ModuleConfFunc module_conf;                  /* deprecated: NULL */
    ModuleExtendedConfFunc module_ext_conf;      /* deprecated: NULL */
    ModuleInitFunc module_init;                  /* deprecated: NULL */
    ModuleInitFunc module_post_init;             /* deprecated: NULL */
    ModuleConfSetupFunc module_config_setup;
    ModuleEnablerFunc module_enable;             /* deprecated: NULL */
    ModuleCanUnloadFunc module_can_unload;       /* deprecated: NULL */
    ModuleExtendedInitFunc module_ext_init;
};

#ifdef __cplusplus
}
#endif
#endif
