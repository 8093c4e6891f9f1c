/* outbound.c: (stub, being written) */
