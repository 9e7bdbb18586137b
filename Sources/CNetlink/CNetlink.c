#define _GNU_SOURCE
#include "CNetlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <malloc.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <utmpx.h>

int portcullis_enter_netns(int fd) {
    return setns(fd, CLONE_NEWNET);
}

int portcullis_unshare_netns(void) {
    return unshare(CLONE_NEWNET);
}

int portcullis_thread_id(void) {
    return (int)syscall(SYS_gettid);
}

int portcullis_nft_monitor_open(int buffer) {
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

int portcullis_utmpx_name(const char *path) {
    return utmpxname(path);
}

int portcullis_malloc_trim(void) {
    return malloc_trim(0);
}
