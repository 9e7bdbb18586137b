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

#include <errno.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/** The calling thread's id: what the kernel names as the committer of an nf_tables transaction. */
static inline int portcullis_thread_id(void) {
    return (int)syscall(SYS_gettid);
}

/** Opens a non-blocking netlink socket subscribed to the kernel's nf_tables change notifications (the ones
    `nft monitor` prints) in the calling thread's network namespace, with a receive buffer of `buffer` bytes if
    allowed. Returns the descriptor, or -1 with errno set. */
static inline int portcullis_nft_monitor_open(int buffer) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
    if (fd < 0) return -1;
    struct sockaddr_nl address = { .nl_family = AF_NETLINK };
    int group = 7; /* NFNLGRP_NFTABLES */
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0
        || setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof group) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buffer, sizeof buffer) != 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    return fd;
}
#endif
