#define _GNU_SOURCE
#include "CNetlink.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nf_tables.h>
#include <string.h>
#include <arpa/inet.h>
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

int portcullis_nft_monitor_join(int fd, int join) {
    int group = NFNLGRP_NFTABLES;
    return setsockopt(fd, SOL_NETLINK, join ? NETLINK_ADD_MEMBERSHIP : NETLINK_DROP_MEMBERSHIP, &group, sizeof group);
}

long long portcullis_nft_generation(void) {
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
    if (fd < 0) return -1;
    struct {
        struct nlmsghdr header;
        struct nfgenmsg body;
    } request = {
        .header = {
            .nlmsg_len = sizeof request,
            .nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN,
            .nlmsg_flags = NLM_F_REQUEST,
            .nlmsg_seq = 1,
        },
        .body = { .nfgen_family = AF_UNSPEC, .version = NFNETLINK_V0 },
    };
    struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
    if (sendto(fd, &request, sizeof request, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    /* The reply: one NFT_MSG_NEWGEN message whose attributes follow the nfgenmsg; NFTA_GEN_ID is a be32. */
    union {
        char bytes[8192];
        struct nlmsghdr align;
    } reply;
    long long generation = -1;
    int error = EPROTO;
    for (;;) {
        ssize_t n = recv(fd, reply.bytes, sizeof reply.bytes, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            error = errno;
            break;
        }
        struct nlmsghdr *message = (struct nlmsghdr *)reply.bytes;
        if (!NLMSG_OK(message, (unsigned int)n)) break;
        if (message->nlmsg_type == NLMSG_ERROR) {
            struct nlmsgerr *e = NLMSG_DATA(message);
            error = e->error ? -e->error : EPROTO;
            break;
        }
        if (message->nlmsg_type != ((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN)) continue;
        size_t offset = NLMSG_LENGTH(sizeof(struct nfgenmsg));
        while (offset + NLA_HDRLEN <= message->nlmsg_len) {
            struct nlattr *attribute = (struct nlattr *)((char *)message + offset);
            if (attribute->nla_len < NLA_HDRLEN || offset + attribute->nla_len > message->nlmsg_len) break;
            if ((attribute->nla_type & NLA_TYPE_MASK) == NFTA_GEN_ID && attribute->nla_len >= NLA_HDRLEN + 4) {
                uint32_t id;
                memcpy(&id, (char *)attribute + NLA_HDRLEN, 4);
                generation = ntohl(id);
            }
            offset += NLA_ALIGN(attribute->nla_len);
        }
        break;
    }
    close(fd);
    if (generation < 0) errno = error;
    return generation;
}

int portcullis_utmpx_name(const char *path) {
    return utmpxname(path);
}

int portcullis_malloc_trim(void) {
    return malloc_trim(0);
}

int portcullis_malloc_arena_max(int count) {
    return mallopt(M_ARENA_MAX, count);
}
