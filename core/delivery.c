/* delivery.c: (stub, being written) */
