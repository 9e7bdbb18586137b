#!/usr/bin/python3
"""Idle resident memory of the Portcullis daemon: each binary given is started (`-f start --no-firewall`) on the
same small tree (two jails on log files of their own, store in a temporary directory), left idle for a few seconds,
and its VmRSS read from /proc; repeated, the median printed. With --metrics the tree also has
`metrics = 127.0.0.1:PORT` and the endpoint is scraped once before the reading.

    bench/idle_rss.py --portcullis before/portcullis --portcullis after/portcullis [--metrics] [--runs 5]

Prints one line per binary: `idle RSS: 9.8 MiB (median of 5; runs …), PSS 7.0 MiB, private 5.1 MiB BINARY [metrics]`
(PSS and private pages from /proc/PID/smaps_rollup, medians).
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time


def tree(tmp, metrics_port):
    conf = f"{tmp}/conf"
    os.makedirs(f"{conf}/filter.d")
    with open(f"{conf}/portcullis.conf", "w") as f:
        f.write(f"[Definition]\nloglevel = INFO\nlogtarget = {tmp}/portcullis.log\nsocket = {tmp}/portcullis.sock\n"
                f"pidfile = {tmp}/portcullis.pid\ndbfile = {tmp}/portcullis.sqlite3\n")
        if metrics_port:
            f.write(f"metrics = 127.0.0.1:{metrics_port}\n")
    with open(f"{conf}/filter.d/demo.conf", "w") as f:
        f.write("[Definition]\nfailregex = ^\\s*\\S+ demo\\[\\d+\\]: authentication failure from <HOST>$\n")
    with open(f"{conf}/jail.conf", "w") as f:
        f.write("[DEFAULT]\nmaxretry = 3\nfindtime = 10m\nbantime = 1h\nport = 22\n\n"
                f"[a]\nenabled = true\nfilter = demo\nlogpath = {tmp}/a.log\n\n"
                f"[b]\nenabled = true\nfilter = demo\nlogpath = {tmp}/b.log\n")
    for name in ("a", "b"):
        open(f"{tmp}/{name}.log", "w").close()
    return conf


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def one(exe, metrics, idle):
    tmp = tempfile.mkdtemp(prefix="pcl-rss-")
    port = free_port() if metrics else None
    conf = tree(tmp, port)
    proc = subprocess.Popen([exe, "-c", conf, "-f", "start", "--no-firewall"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        sock = f"{tmp}/portcullis.sock"
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if subprocess.run([exe, "-s", sock, "ping"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{exe} did not start")
        if port:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
                while c.recv(65536):
                    pass
        time.sleep(idle)
        with open(f"/proc/{proc.pid}/status") as f:
            kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        # PSS (shared pages divided among the processes that map them) and private pages, from smaps_rollup.
        rollup = {}
        with open(f"/proc/{proc.pid}/smaps_rollup") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[1].isdigit():
                    rollup[parts[0].rstrip(":")] = int(parts[1])
        private = rollup.get("Private_Clean", 0) + rollup.get("Private_Dirty", 0)
        subprocess.run([exe, "-s", sock, "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc.wait(15)
        return kib, rollup.get("Pss", 0), private
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--portcullis", action="append", required=True)
    p.add_argument("--metrics", action="store_true")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--idle", type=float, default=3.0)
    args = p.parse_args()
    for exe in args.portcullis:
        runs = [one(os.path.abspath(exe), args.metrics, args.idle) for _ in range(args.runs)]
        mib = [r[0] / 1024 for r in runs]
        pss = statistics.median(r[1] / 1024 for r in runs)
        private = statistics.median(r[2] / 1024 for r in runs)
        print(f"idle RSS: {statistics.median(mib):.1f} MiB (median of {len(runs)}; runs "
              f"{', '.join(f'{m:.1f}' for m in mib)}), PSS {pss:.1f} MiB, private {private:.1f} MiB "
              f"{exe}{' [metrics]' if args.metrics else ''}")


if __name__ == "__main__":
    main()
