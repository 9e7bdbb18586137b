#ifndef PORTCULLIS_CLIBPQ_SHIM_H
#define PORTCULLIS_CLIBPQ_SHIM_H
/* libpq, PostgreSQL's C client, wrapped once by Fleet.PGConnection. */
#include <libpq-fe.h>
#endif
