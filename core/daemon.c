/* daemon.c: (stub, being written) */
