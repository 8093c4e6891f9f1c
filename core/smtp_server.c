/* smtp_server.c: (stub, being written) */
