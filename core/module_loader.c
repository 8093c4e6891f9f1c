/* module_loader.c: (stub, being written) */
