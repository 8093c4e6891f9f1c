/* binding_table.c: (stub, being written) */
