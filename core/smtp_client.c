/* smtp_client.c: (stub, being written) */
