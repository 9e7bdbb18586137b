#ifndef PORTCULLIS_CNFTABLES_SHIM_H
#define PORTCULLIS_CNFTABLES_SHIM_H
#include <nftables/libnftables.h>
/* Nothing else here: system-call helpers (setns, gettid, the netlink monitor socket) live in the CNetlink target,
   whose header includes no system header (see there why). */
#endif
