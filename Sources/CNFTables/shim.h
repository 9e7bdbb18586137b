#ifndef PORTCULLIS_CNFTABLES_SHIM_H
#define PORTCULLIS_CNFTABLES_SHIM_H
#include <nftables/libnftables.h>

/* libnftables works in the network namespace of the calling thread. setns(2) is only declared with _GNU_SOURCE,
   which Swift's Glibc module does not see, so it is declared here; CLONE_NEWNET is 0x40000000 on Linux. */
extern int setns(int fd, int nstype);

/** Moves the calling thread into the network namespace open at fd. Returns 0 or -1 with errno set. */
static inline int portcullis_enter_netns(int fd) {
    return setns(fd, 0x40000000);
}
#endif
