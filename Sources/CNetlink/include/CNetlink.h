#ifndef PORTCULLIS_CNETLINK_H
#define PORTCULLIS_CNETLINK_H
/* Small Linux system-call and glibc helpers the daemon needs and Swift's Glibc module cannot express (setns(2) needs
   _GNU_SOURCE; netlink constants). This header includes no system header on purpose: a C module that includes
   <sys/socket.h> or <unistd.h> redefines glibc's types (fd_set) beside SwiftGlibc's, and clang then refuses the
   build depending on the order the modules are loaded. The definitions live in CNetlink.c. */

/** Moves the calling thread into the network namespace open at fd. Returns 0 or -1 with errno set. */
int portcullis_enter_netns(int fd);

/** Moves the calling thread into a new, empty network namespace (unshare(2) with CLONE_NEWNET); the namespace
    goes away when the thread ends. Returns 0 or -1 with errno set. */
int portcullis_unshare_netns(void);

/** The calling thread's id: what the kernel names as the committer of an nf_tables transaction. */
int portcullis_thread_id(void);

/** Opens a non-blocking netlink socket subscribed to the kernel's nf_tables change notifications (the ones
    `nft monitor` prints) in the calling thread's network namespace, with a receive buffer of `buffer` bytes if
    allowed. Returns the descriptor, or -1 with errno set. */
int portcullis_nft_monitor_open(int buffer);

/** Joins (join != 0) or leaves the nf_tables notification group on a socket from portcullis_nft_monitor_open.
    While it is left, the kernel builds no notification for it: a large own transaction then costs the kernel a
    third of the time. Returns 0 or -1 with errno set. */
int portcullis_nft_monitor_join(int fd, int join);

/** The nf_tables generation (ruleset version; every committed transaction adds one) of the calling thread's
    network namespace, asked with NFT_MSG_GETGEN on a short-lived netlink socket. Returns it (0...2^32-1), or -1
    with errno set. */
long long portcullis_nft_generation(void);

/** utmpxname(3) (a GNU extension): the file the next setutxent/getutxent read. Returns 0 or -1. */
int portcullis_utmpx_name(const char *path);

/** malloc_trim(0) (glibc): gives the free memory at the top of the heap and in the arenas back to the system.
    Returns 1 when memory was released, else 0. */
int portcullis_malloc_trim(void);

/** mallopt(M_ARENA_MAX, count) (glibc): at most `count` malloc arenas. Returns 1 on success, else 0. */
int portcullis_malloc_arena_max(int count);
#endif
