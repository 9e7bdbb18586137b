#include "CLibPQ.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

/* One pointer per function, typed from libpq-fe.h's own declarations. */
static struct {
    __typeof__(PQconnectdbParams) *connectdbParams;
    __typeof__(PQstatus) *status;
    __typeof__(PQerrorMessage) *errorMessage;
    __typeof__(PQfinish) *finish;
    __typeof__(PQsocket) *socket;
    __typeof__(PQexecParams) *execParams;
    __typeof__(PQresultStatus) *resultStatus;
    __typeof__(PQresultErrorMessage) *resultErrorMessage;
    __typeof__(PQclear) *clear;
    __typeof__(PQntuples) *ntuples;
    __typeof__(PQnfields) *nfields;
    __typeof__(PQgetvalue) *getvalue;
    __typeof__(PQgetisnull) *getisnull;
    __typeof__(PQconsumeInput) *consumeInput;
    __typeof__(PQnotifies) *notifies;
    __typeof__(PQfreemem) *freemem;
} pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int loaded;
static char failure[512];

static void load(void) {
    /* RTLD_LOCAL: libpq's symbols never interpose anything else in the process. */
    void *library = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (!library) {
        const char *why = dlerror();
        snprintf(failure, sizeof failure, "%s", why ? why : "dlopen libpq.so.5 failed");
        return;
    }
#define RESOLVE(field, name)                                                                                 \
    do {                                                                                                     \
        pq.field = (__typeof__(pq.field))dlsym(library, #name);                                              \
        if (!pq.field) {                                                                                     \
            snprintf(failure, sizeof failure, "libpq.so.5 has no %s", #name);                                \
            return;                                                                                          \
        }                                                                                                    \
    } while (0)
    RESOLVE(connectdbParams, PQconnectdbParams);
    RESOLVE(status, PQstatus);
    RESOLVE(errorMessage, PQerrorMessage);
    RESOLVE(finish, PQfinish);
    RESOLVE(socket, PQsocket);
    RESOLVE(execParams, PQexecParams);
    RESOLVE(resultStatus, PQresultStatus);
    RESOLVE(resultErrorMessage, PQresultErrorMessage);
    RESOLVE(clear, PQclear);
    RESOLVE(ntuples, PQntuples);
    RESOLVE(nfields, PQnfields);
    RESOLVE(getvalue, PQgetvalue);
    RESOLVE(getisnull, PQgetisnull);
    RESOLVE(consumeInput, PQconsumeInput);
    RESOLVE(notifies, PQnotifies);
    RESOLVE(freemem, PQfreemem);
#undef RESOLVE
    loaded = 1;
}

const char *portcullis_pq_load(void) {
    pthread_once(&once, load);
    return loaded ? NULL : failure;
}

PGconn *portcullis_PQconnectdbParams(const char *const *keywords, const char *const *values, int expand_dbname) {
    return pq.connectdbParams(keywords, values, expand_dbname);
}
ConnStatusType portcullis_PQstatus(const PGconn *conn) { return pq.status(conn); }
char *portcullis_PQerrorMessage(const PGconn *conn) { return pq.errorMessage(conn); }
void portcullis_PQfinish(PGconn *conn) { pq.finish(conn); }
int portcullis_PQsocket(const PGconn *conn) { return pq.socket(conn); }
PGresult *portcullis_PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                                  const char *const *paramValues, const int *paramLengths, const int *paramFormats,
                                  int resultFormat) {
    return pq.execParams(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats, resultFormat);
}
ExecStatusType portcullis_PQresultStatus(const PGresult *res) { return pq.resultStatus(res); }
char *portcullis_PQresultErrorMessage(const PGresult *res) { return pq.resultErrorMessage(res); }
void portcullis_PQclear(PGresult *res) { pq.clear(res); }
int portcullis_PQntuples(const PGresult *res) { return pq.ntuples(res); }
int portcullis_PQnfields(const PGresult *res) { return pq.nfields(res); }
char *portcullis_PQgetvalue(const PGresult *res, int row, int column) { return pq.getvalue(res, row, column); }
int portcullis_PQgetisnull(const PGresult *res, int row, int column) { return pq.getisnull(res, row, column); }
int portcullis_PQconsumeInput(PGconn *conn) { return pq.consumeInput(conn); }
PGnotify *portcullis_PQnotifies(PGconn *conn) { return pq.notifies(conn); }
void portcullis_PQfreemem(void *ptr) { pq.freemem(ptr); }
