#ifndef PORTCULLIS_CLIBPQ_H
#define PORTCULLIS_CLIBPQ_H
/* libpq, PostgreSQL's C client, loaded with dlopen on first use and wrapped once by Fleet.PGConnection.
 *
 * The daemon needs libpq only when [fleet] is configured; linking it made every daemon map libpq and the 20
 * libraries it pulls in (OpenSSL, Kerberos, LDAP, GnuTLS, SASL…: about 4.9 MB of resident memory). The types come
 * from libpq's own header (libpq-dev at build time); the functions are called through portcullis_PQ* below, which
 * go to the library loaded by portcullis_pq_load(). */
#include <postgresql/libpq-fe.h>

/* Loads libpq.so.5 and resolves the functions below, once per process (thread-safe). Returns NULL when loaded,
 * else the reason (dlopen's or dlsym's message), a string that stays valid. Every other function here may only be
 * called after it returned NULL. */
const char *portcullis_pq_load(void);

PGconn *portcullis_PQconnectdbParams(const char *const *keywords, const char *const *values, int expand_dbname);
ConnStatusType portcullis_PQstatus(const PGconn *conn);
char *portcullis_PQerrorMessage(const PGconn *conn);
void portcullis_PQfinish(PGconn *conn);
int portcullis_PQsocket(const PGconn *conn);
PGresult *portcullis_PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                                  const char *const *paramValues, const int *paramLengths, const int *paramFormats,
                                  int resultFormat);
ExecStatusType portcullis_PQresultStatus(const PGresult *res);
char *portcullis_PQresultErrorMessage(const PGresult *res);
void portcullis_PQclear(PGresult *res);
int portcullis_PQntuples(const PGresult *res);
int portcullis_PQnfields(const PGresult *res);
char *portcullis_PQgetvalue(const PGresult *res, int row, int column);
int portcullis_PQgetisnull(const PGresult *res, int row, int column);
int portcullis_PQconsumeInput(PGconn *conn);
PGnotify *portcullis_PQnotifies(PGconn *conn);
void portcullis_PQfreemem(void *ptr);
#endif
