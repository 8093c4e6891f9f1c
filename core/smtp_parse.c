/* smtp_parse.c: (stub, being written) */
