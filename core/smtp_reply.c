/* smtp_reply.c: (stub, being written) */
