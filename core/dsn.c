/* dsn.c: (stub, being written) */
