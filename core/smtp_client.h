/* smtp_client.h: (stub) */
