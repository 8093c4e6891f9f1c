/* module_api.c: (stub, being written) */
