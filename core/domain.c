/* domain.c: (stub, being written) */
