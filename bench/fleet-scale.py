#!/usr/bin/python3
"""Fleet scale on this machine: pgbench-style load on the fleet table, as Portcullis writes it, against a
PostgreSQL cluster of our own (initdb in a temp dir, own port and socket directory; removed afterwards).

Each transaction is what a host's fleet thread sends: the advisory lock (ids commit in order), then one
insert-and-notify statement per ban (`--batch` bans per transaction, like an outbox batch), each notification
going to `--listeners` LISTEN sessions (the peers). Reported per run: bans/s, PostgreSQL CPU seconds per 1,000
bans (all postgres processes, from /proc), and the table's size per row. Figures feed bench/fleet-scale.md.
    bench/fleet-scale.py [--seconds 10] [--clients 1,8,32] [--batch 1,10] [--listeners 0,20]
"""
import argparse, glob, os, shutil, subprocess, sys, tempfile, time

PID = os.getpid()


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def pg_bin(name):
    return sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1]


def pg_cpu(datadir):
    """CPU seconds of every postgres process whose command line names our data directory's postmaster tree."""
    total = 0.0
    tck = os.sysconf("SC_CLK_TCK")
    with open(f"{datadir}/postmaster.pid") as f:
        master = int(f.readline())
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open(f"/proc/{p}/stat").read()
            fields = stat[stat.rindex(")") + 2:].split()
            ppid = int(fields[1])
            if int(p) == master:
                # Its own time and that of the backends it reaped (pgbench's connections end with each run).
                total += sum(int(x) for x in fields[11:15]) / tck
            elif ppid == master:
                total += (int(fields[11]) + int(fields[12])) / tck
        except (OSError, ValueError):
            pass
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--batch", default="1,10")
    ap.add_argument("--listeners", default="0,20")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix=f"pcl-fleet-bench-{PID}-")
    os.chmod(tmp, 0o755)
    data, sock, port = f"{tmp}/pg", f"{tmp}/sock", str(21000 + PID % 20000)
    os.makedirs(data)
    os.makedirs(sock)
    shutil.chown(data, "postgres", "postgres")
    shutil.chown(sock, "postgres", "postgres")
    run = ["runuser", "-u", "postgres", "--"]
    listeners = []
    try:
        sh(*run, pg_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres")
        sh(*run, pg_bin("pg_ctl"), "-D", data, "-w", "-l", f"{data}/log", "-o",
           f"-p {port} -k {sock} -c listen_addresses='' -c max_connections=200", "start")
        sh(*run, pg_bin("createdb"), "-h", sock, "-p", port, "portcullis")
        psql = run + ["psql", "-h", sock, "-p", port, "-d", "portcullis", "-At", "-c"]
        sh(*psql, """CREATE TABLE portcullis_fleet (id bigserial PRIMARY KEY, host text NOT NULL, seq bigint NOT NULL,
            jail text NOT NULL, address text NOT NULL, kind text NOT NULL, at double precision NOT NULL,
            ends double precision, UNIQUE (host, seq))""")
        print(f"{'clients':>7} {'batch':>5} {'listeners':>9} {'bans/s':>9} {'pg CPU s/1k bans':>17}")
        for nl in [int(x) for x in args.listeners.split(",")]:
            for p in listeners:
                p.kill()
            listeners = []
            for _ in range(nl):
                # A peer: LISTEN and read notifications (psql prints them as it gets them).
                p = subprocess.Popen(run + ["psql", "-h", sock, "-p", port, "-d", "portcullis", "-q"],
                                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     text=True)
                # A peer: LISTEN, then idle (the server still sends every notification to it).
                p.stdin.write("LISTEN portcullis_fleet;\n")
                p.stdin.flush()
                listeners.append(p)
            for batch in [int(x) for x in args.batch.split(",")]:
                script = f"{tmp}/tx{batch}.sql"
                with open(script, "w") as f:
                    f.write("BEGIN;\nSELECT pg_advisory_xact_lock(7368324);\n")
                    for i in range(batch):
                        f.write(f"\\set s{i} random(1, 9000000000000000)\n\\set a{i} random(1, 65000)\n")
                        f.write("WITH ins AS (INSERT INTO portcullis_fleet (host, seq, jail, address, kind, at, ends) "
                                f"VALUES ('h' || :client_id, :s{i}, 'sshd', '198.18.' || (:a{i} / 250) || '.' || (:a{i} % 250), "
                                "'ban', extract(epoch from now()), extract(epoch from now()) + 3600) "
                                "ON CONFLICT (host, seq) DO NOTHING RETURNING id) "
                                "SELECT pg_notify('portcullis_fleet', 'v1 ' || id || ' h') FROM ins;\n")
                    f.write("COMMIT;\n")
                for clients in [int(x) for x in args.clients.split(",")]:
                    before_rows = int(sh(*psql, "SELECT COUNT(*) FROM portcullis_fleet").stdout)
                    cpu0 = pg_cpu(data)
                    t0 = time.time()
                    sh(*run, pg_bin("pgbench") if os.path.exists(pg_bin("pgbench")) else "pgbench", "-h", sock,
                       "-p", port, "-n", "-f", script, "-c", str(clients), "-j", str(min(clients, 4)), "-T",
                       str(args.seconds), "portcullis")
                    elapsed = time.time() - t0
                    cpu = pg_cpu(data) - cpu0
                    rows = int(sh(*psql, "SELECT COUNT(*) FROM portcullis_fleet").stdout) - before_rows
                    print(f"{clients:>7} {batch:>5} {nl:>9} {rows / elapsed:>9.0f} {cpu / max(rows, 1) * 1000:>17.3f}",
                          flush=True)
        size = sh(*psql, "SELECT pg_total_relation_size('portcullis_fleet') / GREATEST(COUNT(*), 1) FROM portcullis_fleet").stdout
        print(f"table bytes per row (heap + indexes): {size.strip()}")
    finally:
        for p in listeners:
            p.kill()
        subprocess.run(run + [pg_bin("pg_ctl"), "-D", data, "-w", "-m", "fast", "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
