#ifndef PORTCULLIS_CNFTABLES_SHIM_H
#define PORTCULLIS_CNFTABLES_SHIM_H
#include <nftables/libnftables.h>
#endif
