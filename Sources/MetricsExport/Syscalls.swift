import Core

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The one place where Metrics calls libc: a TCP listener, reads and writes under a deadline. Calls retry `EINTR`.
enum TCP {
    /// A failed call and its errno.
    struct Failure: Error, CustomStringConvertible {
        var call: String
        var errno: Int32
        var description: String { "\(call): \(String(cString: strerror(errno)))" }
    }

    /// A listening socket on `address`:`port` (port 0: the kernel picks one), close-on-exec, `SO_REUSEADDR`.
    static func listen(address: IPAddress, port: UInt16, backlog: Int32) throws(Failure) -> Int32 {
        let family = address.family == .v4 ? AF_INET : AF_INET6
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(call: "socket", errno: errno) }
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let rc: Int32
        if address.family == .v4 {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            sa.sin_addr.s_addr = UInt32(truncatingIfNeeded: address.low).bigEndian
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        } else {
            // Only IPv6 on an IPv6 address (`::` does not also take IPv4).
            _ = setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, socklen_t(MemoryLayout<Int32>.size))
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &sa.sin6_addr) { raw in
                for i in 0..<8 {
                    raw[i] = UInt8(truncatingIfNeeded: address.high >> (56 - 8 * UInt64(i)))
                    raw[8 + i] = UInt8(truncatingIfNeeded: address.low >> (56 - 8 * UInt64(i)))
                }
            }
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw Failure(call: "bind", errno: e)
        }
        guard Glibc.listen(fd, backlog) == 0 else {
            let e = errno
            close(fd)
            throw Failure(call: "listen", errno: e)
        }
        return fd
    }

    /// The port a socket is bound to.
    static func localPort(_ fd: Int32) -> UInt16 {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard rc == 0 else { return 0 }
        let family = storage.ss_family
        return withUnsafePointer(to: &storage) { p in
            if family == sa_family_t(AF_INET) {
                return p.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            }
            return p.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
        }
    }

    /// The next connection, non-blocking and close-on-exec; nil once the listener is shut down. Transient errors
    /// (a connection reset before it was accepted, out of descriptors) back off 10 ms and go on.
    static func accept(_ listener: Int32) -> Int32? {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                return fd
            }
            switch errno {
            case EINTR, ECONNABORTED, EPROTO: continue
            case EMFILE, ENFILE, ENOBUFS, ENOMEM: usleep(10_000)
            default: return nil
            }
        }
    }

    static func monotonicNanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// Waits until `fd` is ready for `events` or `deadline` (monotonic ns) passes; false at the deadline.
    static func wait(_ fd: Int32, events: Int16, until deadline: UInt64) -> Bool {
        while true {
            let now = monotonicNanoseconds()
            guard now < deadline else { return false }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let ms = Int32(min((deadline - now) / 1_000_000 + 1, 60_000))
            let rc = poll(&p, 1, ms)
            if rc > 0 { return true }
            if rc < 0 && errno != EINTR { return false }
        }
    }

    /// Reads what is there (up to `room` bytes) into `buffer`, waiting until `deadline`. Nil at the deadline, on
    /// an error or at the end of the stream.
    static func read(_ fd: Int32, into buffer: inout [UInt8], room: Int, until deadline: UInt64) -> Int? {
        var chunk = [UInt8](repeating: 0, count: max(1, min(room, 4096)))
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer += chunk[0..<n]
                return n
            }
            if n == 0 { return nil }
            switch errno {
            case EINTR: continue
            case EAGAIN: guard wait(fd, events: Int16(POLLIN), until: deadline) else { return nil }
            default: return nil
            }
        }
    }

    /// Closes a connection after its response without resetting it: unread input (a refused oversized head) would
    /// make the kernel send RST and the client could lose the response. Stops sending, discards what still comes
    /// for at most 250 ms and 64 KiB, then closes.
    static func lingeringClose(_ fd: Int32) {
        shutdown(fd, Int32(SHUT_WR))
        let until = monotonicNanoseconds() + 250_000_000
        var scratch: [UInt8] = []
        var total = 0
        while total < 65_536, let n = read(fd, into: &scratch, room: 4096, until: until) {
            total += n
            scratch.removeAll(keepingCapacity: true)
        }
        close(fd)
    }

    /// Writes all of `bytes` before `deadline`; false when it could not.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], until deadline: UInt64) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { raw in
                send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                offset += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            guard n < 0, errno == EAGAIN, wait(fd, events: Int16(POLLOUT), until: deadline) else { return false }
        }
        return true
    }
}
