/* route.c: (stub, being written) */
