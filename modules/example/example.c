/* example.c: (stub, being written) */
