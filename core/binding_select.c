/* binding_select.c: (stub, being written) */
