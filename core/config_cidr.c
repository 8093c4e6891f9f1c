/* config_cidr.c: (stub, being written) */
