#ifndef PORTCULLIS_CSYSTEMD_SHIM_H
#define PORTCULLIS_CSYSTEMD_SHIM_H
#include <systemd/sd-journal.h>
#endif
