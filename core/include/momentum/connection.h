/* connection.h: Momentum's connection header for vipmta: connection_handle, host_record and the CONN_ERROR_* codes (vipmta_connection.h). */
#ifndef VIPMTA_MOMENTUM_CONNECTION_H
#define VIPMTA_MOMENTUM_CONNECTION_H
#include "vipmta_connection.h"
#endif
