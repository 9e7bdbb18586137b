#!/usr/bin/python3
"""A tiny DNS server for the server namespace: answers a DNS blocklist zone, refuses everything else quickly.

Postfix's reject_rbl_client looks up <reversed client address>.<zone>; we answer 127.0.0.2 (and a TXT reason) for
the addresses listed on the command line, NXDOMAIN for any other name, so that Postfix prints its real "blocked
using" rejection without any traffic leaving the namespace.

Usage: dnsd.py LISTEN_ADDR PIDFILE ZONE LISTED_ADDR...
"""

import ipaddress
import os
import socket
import struct
import sys


def reversed_name(addr, zone):
    ip = ipaddress.ip_address(addr)
    if ip.version == 4:
        return ".".join(reversed(addr.split("."))) + "." + zone
    nibbles = ip.exploded.replace(":", "")
    return ".".join(reversed(nibbles)) + "." + zone


def parse_question(data):
    labels, i = [], 12
    while data[i]:
        n = data[i]
        labels.append(data[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype, qclass = struct.unpack("!HH", data[i + 1:i + 5])
    return ".".join(labels).lower(), qtype, qclass, data[12:i + 5]


def answer(data, listed, zone):
    qid, flags = struct.unpack("!HH", data[:4])
    name, qtype, _, question = parse_question(data)
    rd = flags & 0x0100
    if name in listed and qtype in (1, 16):
        if qtype == 1:
            rdata = bytes([127, 0, 0, 2])
        else:
            text = b"Listed by the Portcullis test blocklist"
            rdata = bytes([len(text)]) + text
        rr = b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata
        return struct.pack("!HHHHHH", qid, 0x8180 | rd, 1, 1, 0, 0) + question + rr
    if name in listed or name.endswith("." + zone):
        return struct.pack("!HHHHHH", qid, 0x8180 | rd, 1, 0, 0, 0) + question      # no data
    return struct.pack("!HHHHHH", qid, 0x8183 | rd, 1, 0, 0, 0) + question          # NXDOMAIN


def main():
    listen, pidfile, zone = sys.argv[1:4]
    listed = {reversed_name(a, zone) for a in sys.argv[4:]}
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((listen, 53))
    with open(pidfile, "w") as f:
        f.write("%d\n" % os.getpid())
    while True:
        data, peer = sock.recvfrom(4096)
        try:
            sock.sendto(answer(data, listed, zone), peer)
        except (IndexError, struct.error):
            continue


if __name__ == "__main__":
    main()
