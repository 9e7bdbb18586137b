#!/usr/bin/python3
"""End-to-end test of the host firewall policy on real kernel nftables, inside network namespaces it creates.

Three namespaces: a server (192.0.2.1, 2001:db8::1 toward the outside; 198.51.100.1, 2001:db8:1::1 toward the
admin network), an outside client namespace (192.0.2.2 and .3, 2001:db8::2 and ::3, plus a "bogon" source
203.0.113.9 / 2001:db8:bad::9 the server routes back) and an admin namespace (198.51.100.2, 2001:db8:1::2). The
server runs the admin's real daemons from Debian, started by tests/realdaemons/serve.sh (the real-daemon scripts'
configuration, certificates and private mounts) on every address: OpenSSH on 22, Postfix on smtp 25, submission 587
and smtps 465 (SMTP AUTH through Dovecot), Dovecot on imap 143, pop3 110, imaps 993 and pop3s 995 (the plain-text
ports listen but the policy allows only the TLS ones), munin-node on 4949 (answering the admin
network only, by its own cidr_allow); and Python listeners for http 80, a stray TCP 8081 on every address, UDP echo on
dns 53 and a stray 5355. Checks, through `portcullis firewall plan|apply|confirm` and `portcullis audit`: each daemon
answers in its own protocol (TLS where it should), plan output and errors (file:line, nothing loaded), the
SSH-session guard, reachability per service, family and source group (munin from the admin namespace only), the
bogon drop, the revert after the timeout (measured), apply + confirm, a second apply reverted to the confirmed
policy, the port-scan guard, the daemon's bans winning over the policy on every allowed port, and the audit (what
listens, which process, what the policy allows) against a probe of every listening port and nmap (TCP SYN and UDP)
from the outside namespace, before and after the policy.

Never touches the host's ruleset; the namespaces and temporary files are removed at the end. Run as root:
    tests/e2e/policy_e2e.py [--portcullis .build/debug/portcullis]
Namespace names start with $PCL_NS_PREFIX (default pcl-policy) and end with the PID; RD_KEEP=1 keeps the real
daemons' directory (configuration and logs, named in serve.sh's `kept` line).
Ends with one line: `policy: N passed, M failed`.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PID = os.getpid()
NS = os.environ.get("PCL_NS_PREFIX", "pcl-policy")
S, O, A = f"{NS}-s-{PID}", f"{NS}-o-{PID}", f"{NS}-a-{PID}"
SO, OS_, SA, AS = (f"vps{PID % 100000}", f"vpo{PID % 100000}", f"vpa{PID % 100000}", f"vpb{PID % 100000}")
SERVER4, CLIENT4, SCANNER4, BANNED4, BOGON4 = "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "203.0.113.9"
SERVER6, CLIENT6, SCANNER6, BOGON6 = "2001:db8::1", "2001:db8::2", "2001:db8::3", "2001:db8:bad::9"
ADMIN_SERVER4, ADMIN4, ADMIN_SERVER6, ADMIN6 = "198.51.100.1", "198.51.100.2", "2001:db8:1::1", "2001:db8:1::2"
TCP_PORTS = [22, 25, 80, 110, 143, 465, 587, 993, 995, 4949, 8081]
UDP_PORTS = [53, 5355]
# The real daemons (serve.sh) and the processes that may own their listening sockets (the first owner the audit finds:
# the master process, or a child that inherited the socket).
SERVE = ROOT + "/tests/realdaemons/serve.sh"
POSTFIX, DOVECOT = {"master", "smtpd"}, {"dovecot", "imap-login", "pop3-login"}
OWNERS = {22: {"sshd"}, 25: POSTFIX, 465: POSTFIX, 587: POSTFIX, 110: DOVECOT, 143: DOVECOT, 993: DOVECOT, 995: DOVECOT,
          4949: {"munin-node"}}
# Dovecot's plain-text ports: the seed's server listens there, its ruleset (and the policy) allow only the TLS ones.
PLAIN_MAIL = [110, 143]
MAIL_PORTS = [25, 465, 587, 993, 995]
R, C, V = f"{NS}-r-{PID}", f"{NS}-c-{PID}", f"{NS}-v-{PID}"
RC, CR, RV, VR = (f"vfr{PID % 100000}", f"vfc{PID % 100000}", f"vfs{PID % 100000}", f"vft{PID % 100000}")
ROUTER_C4, FWD_CLIENT4, FWD_OTHER4 = "198.51.100.1", "198.51.100.2", "198.51.100.3"
ROUTER_V4, FWD_SERVER4 = "203.0.113.1", "203.0.113.2"
ROUTER_C6, FWD_CLIENT6, FWD_OTHER6 = "2001:db8:10::1", "2001:db8:10::2", "2001:db8:10::3"
ROUTER_V6, FWD_SERVER6 = "2001:db8:20::1", "2001:db8:20::2"
REVERT = 12  # seconds: long enough for the reachability checks that run before the revert

POLICY = """# policy_e2e.py's policy
[firewall]
default = reject
log = 5/minute
forward = reject

[groups]
admin = 198.51.100.0/24, 2001:db8:1::/48

[services]
ssh = ssh
mail = smtp, submission, submissions
mailbox = imaps, pop3s
web = http
munin = munin from admin
dns = udp/53

[antispoof]
rpfilter = yes
bogons = 203.0.113.0/24, 2001:db8:bad::/48

[portscan]
rate = 20/second
burst = 20
bantime = 60
"""

results = []


def check(name, ok, detail=""):
    results.append((name, bool(ok)))
    print(f"{'PASS' if ok else 'FAIL'} {name}" + (f" — {detail}" if detail and not ok else ""), flush=True)
    return ok


def sh(*cmd, check_rc=True, ns=None, env=None, timeout=60):
    if ns:
        cmd = ("ip", "netns", "exec", ns) + tuple(cmd)
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=timeout)
    if check_rc and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()} {r.stdout.strip()}")
    return r


LISTEN = r"""
import socket, sys, threading
def tcp(fam, addr, port, v6only):
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if v6only else 0)
    s.bind((addr, port)); s.listen(256)
    while True:
        c, _ = s.accept()
        try: c.sendall(b"hello\n")
        except OSError: pass
        c.close()
def udp(fam, addr, port):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    while True:
        data, peer = s.recvfrom(512)
        s.sendto(b"echo " + data, peer)
threads = []
for port in map(int, sys.argv[1:]):
    threads.append(threading.Thread(target=tcp, args=(socket.AF_INET, "0.0.0.0", port, True), daemon=True))
    threads.append(threading.Thread(target=tcp, args=(socket.AF_INET6, "::", port, True), daemon=True))
# The stray service: one dual-stack socket on every address.
threads.append(threading.Thread(target=tcp, args=(socket.AF_INET6, "::", 8081, False), daemon=True))
for port in (53, 5355):
    threads.append(threading.Thread(target=udp, args=(socket.AF_INET, "0.0.0.0", port), daemon=True))
    threads.append(threading.Thread(target=udp, args=(socket.AF_INET6, "::", port), daemon=True))
for t in threads: t.start()
print("listening", flush=True)
threads[0].join()
"""

# TCP: "open" when the handshake completes (what nmap's SYN scan calls open); UDP: "open" when the echo answers.
PROBE = r"""
import socket, sys, time, json
src, dst = sys.argv[1], sys.argv[2]
out = {}
fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
for item in sys.argv[3:]:
    proto, port = item.split("/"); port = int(port)
    if proto == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(1.0); s.bind((src, 0))
        try:
            s.connect((dst, port)); out[item] = "open"
        except ConnectionRefusedError: out[item] = "refused"
        except (socket.timeout, TimeoutError): out[item] = "timeout"
        except OSError as e: out[item] = "error " + str(e)
        s.close()
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(1.0); s.bind((src, 0))
        try:
            s.connect((dst, port)); s.send(b"probe"); data = s.recv(64)
            out[item] = "open" if data.startswith(b"echo") else "nodata"
        except ConnectionRefusedError: out[item] = "refused"
        except (socket.timeout, TimeoutError): out[item] = "timeout"
        except OSError as e: out[item] = "error " + str(e)
        s.close()
    time.sleep(float(__import__("os").environ.get("PROBE_GAP", "0.06")))
print(json.dumps(out))
"""

SCAN = r"""
import socket, sys, select, time
src, dst, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fam = socket.AF_INET6 if ':' in dst else socket.AF_INET
socks = []
for port in range(first, first + count):
    s = socket.socket(fam, socket.SOCK_STREAM); s.setblocking(False); s.bind((src, 0))
    try: s.connect((dst, port))
    except BlockingIOError: pass
    except OSError: pass
    socks.append(s)
time.sleep(0.5)
for s in socks: s.close()
print("scanned", count)
"""


# Each daemon in its own protocol: the first line it sends (after the TLS handshake on 465, 993 and 995); on 587 the
# greeting, then STARTTLS and the AUTH line of the EHLO reply inside TLS (SASL through Dovecot); on 4949 the banner and
# the answer to `version`. "closed" when the server ends the connection without a word (munin-node to a network it
# does not allow), else refused / timeout / error.
GREET = r"""
import json, socket, ssl, sys
src, dst = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
def lines(s, until):
    f = s.makefile("rb"); out = []
    while True:
        l = f.readline(1024).decode("utf-8", "replace").rstrip("\r\n"); out.append(l)
        if not l or until(l): return out
def talk(port):
    s = socket.create_connection((dst, port), 3, (src, 0))
    if port in (465, 993, 995):
        s = ctx.wrap_socket(s)
    first = lines(s, lambda l: True)[0]
    if port == 587 and first.startswith("220 "):
        s.sendall(b"EHLO client.example.test\r\n"); caps = lines(s, lambda l: not l.startswith("250-"))
        if "250-STARTTLS" in caps:
            s.sendall(b"STARTTLS\r\n"); lines(s, lambda l: True)
            s = ctx.wrap_socket(s); s.sendall(b"EHLO client.example.test\r\n")
            caps = lines(s, lambda l: not l.startswith("250-"))
            first += " | STARTTLS " + s.version() + " | " + " ".join(c for c in caps if c.startswith("250-AUTH "))
    if port == 4949 and first.startswith("# munin node at "):
        s.sendall(b"version\n"); first += " | " + lines(s, lambda l: True)[0]
    s.close()
    return first or "closed"
out = {}
for port in map(int, sys.argv[3:]):
    try: out[port] = talk(port)
    except ConnectionRefusedError: out[port] = "refused"
    except (socket.timeout, TimeoutError): out[port] = "timeout"
    except (OSError, ssl.SSLError) as e: out[port] = "error " + str(e)
print(json.dumps(out))
"""

# What each real daemon says (host name mail.example.test: lib.sh's certificate and configuration).
REAL = {22: ("SSH-2.0-OpenSSH_",), 25: ("220 mail.example.test ESMTP",), 465: ("220 mail.example.test ESMTP",),
        587: ("220 mail.example.test ESMTP", "| STARTTLS TLSv1.", "250-AUTH PLAIN"),
        993: ("* OK [CAPABILITY IMAP4rev1", "Dovecot (Debian) ready."), 995: ("+OK Dovecot (Debian) ready.",),
        4949: ("# munin node at mail.example.test", "| munins node on mail.example.test version: 2.")}


def greet(ns, src, dst, ports):
    """The first words of each daemon, seen from namespace ns with source address src: {port: text}."""
    r = sh("/usr/bin/python3", "-c", GREET, src, dst, *map(str, ports), ns=ns, check_rc=False)
    try:
        return {int(k): v for k, v in json.loads(r.stdout).items()}
    except ValueError:
        return {"error": r.stdout + r.stderr}


def real(port, text):
    """The text is what the real daemon on that port says: every expected piece, the first one at the start."""
    want = REAL[port]
    return isinstance(text, str) and text.startswith(want[0]) and all(w in text for w in want[1:])


def answers(seen, ports):
    return all(real(p, seen.get(p)) for p in ports)


def probe(ns, src, dst, items, gap=0.06):
    env = dict(os.environ, PROBE_GAP=str(gap))
    r = sh("/usr/bin/python3", "-c", PROBE, src, dst, *items, ns=ns, check_rc=False, env=env)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return {"error": r.stdout + r.stderr}


def wait_until(fn, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return fn()


class Env:
    def __init__(self, exe):
        self.exe = exe
        self.tmp = tempfile.mkdtemp(prefix="pcl-policy-e2e-")
        self.conf = f"{self.tmp}/conf"
        self.run = f"{self.tmp}/run"
        self.listener = None
        self.daemon = None
        self.server = None
        self.router_daemon = None
        self.serve = None

    def setup(self):
        for ns in (S, O, A):
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "set", "lo", "up", ns=ns)
        # The real daemons (serve.sh: private mounts in the server namespace, every address) start while the links
        # are made; they run until we close serve.sh's standard input. munin-node answers the admin group only.
        t0 = time.monotonic()
        self.serve = subprocess.Popen(
            ["bash", SERVE, S, "sshd", "dovecot", "postfix", "munin"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(f"{self.tmp}/serve.log", "w"), text=True,
            env=dict(os.environ, RD_MUNIN_ALLOW="198.51.100.0/24 2001:db8:1::/48", RD_SSHD_EXTRA="MaxStartups 200"))
        sh("ip", "link", "add", SO, "type", "veth", "peer", "name", OS_)
        sh("ip", "link", "add", SA, "type", "veth", "peer", "name", AS)
        sh("ip", "link", "set", SO, "netns", S)
        sh("ip", "link", "set", SA, "netns", S)
        sh("ip", "link", "set", OS_, "netns", O)
        sh("ip", "link", "set", AS, "netns", A)
        sh("ip", "addr", "add", f"{SERVER4}/24", "dev", SO, ns=S)
        sh("ip", "-6", "addr", "add", f"{SERVER6}/64", "dev", SO, "nodad", ns=S)
        sh("ip", "addr", "add", f"{ADMIN_SERVER4}/24", "dev", SA, ns=S)
        sh("ip", "-6", "addr", "add", f"{ADMIN_SERVER6}/64", "dev", SA, "nodad", ns=S)
        for a in (CLIENT4, SCANNER4, BANNED4):
            sh("ip", "addr", "add", f"{a}/24", "dev", OS_, ns=O)
        sh("ip", "addr", "add", f"{BOGON4}/32", "dev", OS_, ns=O)
        for a in (CLIENT6, SCANNER6):
            sh("ip", "-6", "addr", "add", f"{a}/64", "dev", OS_, "nodad", ns=O)
        sh("ip", "-6", "addr", "add", f"{BOGON6}/128", "dev", OS_, "nodad", ns=O)
        sh("ip", "addr", "add", f"{ADMIN4}/24", "dev", AS, ns=A)
        sh("ip", "-6", "addr", "add", f"{ADMIN6}/64", "dev", AS, "nodad", ns=A)
        for ns, dev in ((S, SO), (S, SA), (O, OS_), (A, AS)):
            sh("ip", "link", "set", dev, "up", ns=ns)
        # The bogon sources are routed back through the outside link, so only the bogon list can stop them.
        sh("ip", "route", "add", "203.0.113.0/24", "dev", SO, ns=S)
        sh("ip", "-6", "route", "add", "2001:db8:bad::/48", "dev", SO, ns=S)
        sh("ip", "route", "add", "192.0.2.0/24", "dev", OS_, "src", CLIENT4, ns=O, check_rc=False)
        # The rest are Python listeners.
        self.listener = subprocess.Popen(["ip", "netns", "exec", S, "/usr/bin/python3", "-c", LISTEN, "80"],
                                         stdout=subprocess.PIPE, text=True)
        self.listener.stdout.readline()
        ready = self.serve.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError("serve.sh did not start the daemons: " + open(f"{self.tmp}/serve.log").read()[-2000:])
        print(f"policy: real daemons listening {time.monotonic() - t0:.1f} s after start", flush=True)
        os.makedirs(self.conf)
        with open(f"{self.conf}/firewall.conf", "w") as f:
            f.write(POLICY)

    def pcl(self, *args, env_extra=None, ns=S, timeout=60):
        env = dict(os.environ)
        env.pop("SSH_CONNECTION", None)
        if env_extra:
            env.update(env_extra)
        return sh(self.exe, *args, ns=ns, check_rc=False, env=env, timeout=timeout)

    def fw(self, verb, *args, env_extra=None):
        extra = ["-c", self.conf] if verb in ("plan", "apply") else []
        state = ["--run-dir", self.run] if verb in ("apply", "confirm") else []
        return self.pcl("firewall", verb, *extra, *state, *args, env_extra=env_extra)

    def table(self):
        r = sh("nft", "list", "table", "inet", "portcullis-policy", ns=S, check_rc=False)
        return r.stdout if r.returncode == 0 else None

    def cleanup(self):
        if self.serve and self.serve.poll() is None:
            # serve.sh stops its daemons by PID and undoes its mounts when its standard input closes.
            self.serve.stdin.close()
            try:
                self.serve.wait(20)
            except subprocess.TimeoutExpired:
                self.serve.terminate()
                self.serve.wait(10)
        for p in (self.daemon, self.listener, self.router_daemon, self.server):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        # Reverters this test started run in the server namespace with our run directory: end them by pid.
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read().split(b"\0")
                except OSError:
                    continue
                if b"_revert" in cmd and self.run.encode() in cmd:
                    try:
                        os.kill(int(pid), 15)
                    except OSError:
                        pass
        for ns in (S, O, A, R, C, V):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
        shutil.rmtree(self.tmp, ignore_errors=True)


def outside_items():
    return [f"tcp/{p}" for p in TCP_PORTS] + [f"udp/{p}" for p in UDP_PORTS]


# From outside under the policy: every service the policy allows is open, munin (admin group only) and the strays are
# refused.
WANT = {**{f"tcp/{p}": "open" for p in TCP_PORTS}, "tcp/4949": "refused", "tcp/8081": "refused", "udp/53": "open",
        "udp/5355": "refused", **{f"tcp/{p}": "refused" for p in PLAIN_MAIL}}


def real_daemons(label, munin_outside):
    """Each real daemon answers in its own protocol from outside (both families), munin-node from the admin network;
    from outside munin is `munin_outside` (closed by munin-node itself, or refused by the policy)."""
    for fam, src, dst in (("IPv4", CLIENT4, SERVER4), ("IPv6", CLIENT6, SERVER6)):
        seen = greet(O, src, dst, [22] + MAIL_PORTS + [4949])
        check(f"{label}, outside {fam}: OpenSSH, Postfix (25, 465, 587 with STARTTLS and AUTH) and Dovecot (993, 995) "
              "answer", answers(seen, [22] + MAIL_PORTS), seen)
        check(f"{label}, outside {fam}: munin {munin_outside}", seen.get(4949) == munin_outside, seen.get(4949))
    adm = greet(A, ADMIN4, ADMIN_SERVER4, [4949]), greet(A, ADMIN6, ADMIN_SERVER6, [4949])
    check(f"{label}: munin-node answers the admin namespace (banner and version, IPv4 and IPv6)",
          all(real(4949, a.get(4949)) for a in adm), adm)


def run_tests(env):
    # munin-node's own allow list (cidr_allow: the admin group) ends an outsider's connection without a word.
    real_daemons("no policy", "closed")
    audit_before(env)
    # Before any policy: everything listening is reachable, the bogon source too (it is routed back).
    before4 = probe(O, CLIENT4, SERVER4, outside_items())
    check("no policy: every listening port answers from outside (IPv4)", all(v == "open" for v in before4.values()),
          before4)
    check("no policy: the bogon sources connect (the route back exists)",
          probe(O, BOGON4, SERVER4, ["tcp/22"]).get("tcp/22") == "open"
          and probe(O, BOGON6, SERVER6, ["tcp/22"]).get("tcp/22") == "open", probe(O, BOGON6, SERVER6, ["tcp/22"]))

    # --- plan
    r = env.fw("plan")
    check("plan exits 0", r.returncode == 0, r.stderr)
    check("plan prints the ruleset as the kernel lists it", "tcp dport 22 accept comment \"ssh\"" in r.stdout
          and "type filter hook input priority filter; policy accept;" in r.stdout, r.stdout[:400])
    check("plan: nothing loaded yet, all of it new", "is not loaded; all of it is new" in r.stdout)
    check("plan changed nothing in the kernel", env.table() is None)

    # --- bad input: file:line, nothing loaded
    with open(f"{env.conf}/firewall.local", "w") as f:
        f.write("[services]\nweb = htpp\n")
    r = env.fw("apply", "--timeout", "5")
    check("unknown service name: error with file:line", r.returncode != 0
          and f"{env.conf}/firewall.local:2: service 'web': unknown service name 'htpp'" in r.stderr, r.stderr)
    with open(f"{env.conf}/firewall.local", "w") as f:
        f.write("[groups]\nops = 192.0.2.0/33\n")
    r = env.fw("plan")
    check("malformed network: error with file:line", r.returncode != 0
          and f"{env.conf}/firewall.local:2: group 'ops': '192.0.2.0/33'" in r.stderr, r.stderr)
    with open(f"{env.conf}/firewall.local", "w") as f:
        f.write("[services]\nstats = 8125 from monitoring\n")
    r = env.fw("apply")
    check("undefined group: error with file:line", r.returncode != 0
          and f"{env.conf}/firewall.local:2: address group 'monitoring' is used but not defined" in r.stderr, r.stderr)
    os.unlink(f"{env.conf}/firewall.local")
    check("after the errors nothing is loaded", env.table() is None)

    # --- the SSH session guard
    r = env.fw("apply", env_extra={"SSH_CONNECTION": f"{CLIENT4} 50022 {SERVER4} 2222"})
    check("apply refuses a policy that cuts the SSH session (sshd on 2222)", r.returncode != 0
          and "allows no new SSH connection from 192.0.2.2 to port 2222" in r.stderr and env.table() is None,
          r.stderr)
    r = env.fw("apply", "--force", "--timeout", "30",
               env_extra={"SSH_CONNECTION": f"{CLIENT4} 50022 {SERVER4} 2222"})
    check("apply --force overrides the SSH-session guard", r.returncode == 0 and env.table() is not None, r.stderr)
    forced_reverter = int(r.stdout.rsplit("reverter pid ", 1)[1].rstrip(")\n")) if "reverter pid " in r.stdout else 0

    # --- apply (replacing the forced one, whose reverter is ended), then let the timeout revert it
    t0 = time.monotonic()
    r = env.fw("apply", "--timeout", str(REVERT), env_extra={"SSH_CONNECTION": f"{CLIENT4} 50022 {SERVER4} 22"})
    took = time.monotonic() - t0
    check("apply (SSH session allowed) exits 0 and returns at once", r.returncode == 0 and took < 3,
          f"{took:.2f} s {r.stderr}")
    applied_at = time.monotonic()
    check("the replaced apply's reverter has ended", forced_reverter > 0
          and wait_until(lambda: not os.path.exists(f"/proc/{forced_reverter}"), 3), forced_reverter)
    check("apply loaded table inet portcullis-policy", env.table() is not None)
    out4 = probe(O, CLIENT4, SERVER4, outside_items())
    out6 = probe(O, CLIENT6, SERVER6, outside_items())
    check("outside IPv4: services open, munin and the stray refused", out4 == WANT, out4)
    check("outside IPv6: services open, munin and the stray refused", out6 == WANT, out6)
    adm4 = probe(A, ADMIN4, ADMIN_SERVER4, ["tcp/4949", "tcp/8081"])
    adm6 = probe(A, ADMIN6, ADMIN_SERVER6, ["tcp/4949", "tcp/8081"])
    check("admin IPv4: munin open, stray refused", adm4 == {"tcp/4949": "open", "tcp/8081": "refused"}, adm4)
    check("admin IPv6: munin open, stray refused", adm6 == {"tcp/4949": "open", "tcp/8081": "refused"}, adm6)
    check("bogon source IPv4 dropped", probe(O, BOGON4, SERVER4, ["tcp/22"]).get("tcp/22") == "timeout")
    b6 = probe(O, BOGON6, SERVER6, ["tcp/22"])
    check("bogon source IPv6 dropped", b6.get("tcp/22") == "timeout", b6)
    check("the checks above ran before the deadline", time.monotonic() - applied_at < REVERT - 0.5)
    gone = wait_until(lambda: env.table() is None, REVERT + 3, 0.05)
    reverted_after = time.monotonic() - applied_at
    check("no confirm: the table is removed again within timeout + 1 s", gone and reverted_after <= REVERT + 1,
          f"{reverted_after:.2f} s")
    print(f"policy: reverted {reverted_after:.2f} s after apply --timeout {REVERT}", flush=True)
    check("after the revert the stray port answers again",
          probe(O, CLIENT4, SERVER4, ["tcp/8081"]).get("tcp/8081") == "open")
    r = env.fw("confirm")
    check("confirm after the revert: nothing to confirm", r.returncode == 1 and "nothing to confirm" in r.stderr,
          r.stderr)

    # --- apply + confirm
    r = env.fw("apply", "--timeout", "4")
    check("apply again", r.returncode == 0, r.stderr)
    r = env.fw("confirm")
    check("confirm keeps it", r.returncode == 0 and "confirmed" in r.stdout, r.stderr)
    time.sleep(5)
    check("confirmed policy still loaded after the timeout", env.table() is not None)
    real_daemons("policy", "refused")
    r = env.fw("plan", "--diff-only")
    check("plan after apply: no difference from the kernel", "difference from the kernel: none" in r.stdout,
          r.stdout + r.stderr)

    # --- a second apply (the stray opened), not confirmed: back to the confirmed policy
    with open(f"{env.conf}/firewall.local", "w") as f:
        f.write("[services]\nstray = 8081\n")
    r = env.fw("plan", "--diff-only")
    check("plan shows the added service as a difference",
          '+ tcp dport 8081 accept comment "stray"' in r.stdout, r.stdout)
    r = env.fw("apply", "--timeout", "2")
    check("apply a changed policy", r.returncode == 0, r.stderr)
    check("changed policy: stray open", probe(O, CLIENT4, SERVER4, ["tcp/8081"]).get("tcp/8081") == "open")
    wait_until(lambda: "8081" not in (env.table() or "8081"), 4, 0.05)
    check("not confirmed: back to the confirmed policy (table kept, stray refused)",
          env.table() is not None and probe(O, CLIENT4, SERVER4, ["tcp/8081"]).get("tcp/8081") == "refused")
    os.unlink(f"{env.conf}/firewall.local")

    # --- the port-scan guard: a fast scan of 200 ports gets the scanner dropped, a legitimate client keeps working
    sh("/usr/bin/python3", "-c", SCAN, SCANNER4, SERVER4, "20000", "200", ns=O)
    blocked = sh("nft", "list", "set", "inet", "portcullis-policy", "portscan-block-v4", ns=S).stdout
    check("port scan: scanner in the block set", SCANNER4 in blocked, blocked)
    check("port scan: scanner's new connection to ssh dropped",
          probe(O, SCANNER4, SERVER4, ["tcp/22"]).get("tcp/22") == "timeout")
    check("port scan: a legitimate client still connects",
          probe(O, CLIENT4, SERVER4, ["tcp/22", "tcp/80"]) == {"tcp/22": "open", "tcp/80": "open"})
    sh("/usr/bin/python3", "-c", SCAN, SCANNER6, SERVER6, "20000", "200", ns=O)
    check("port scan IPv6: scanner dropped, client connects",
          probe(O, SCANNER6, SERVER6, ["tcp/22"]).get("tcp/22") == "timeout"
          and probe(O, CLIENT6, SERVER6, ["tcp/22"]).get("tcp/22") == "open")

    # --- the daemon's bans win over the policy
    ban_over_policy(env)

    # --- the audit against a probe from outside, with the policy
    audit_after(env)

    # --- import of the seed's iptables ruleset (real iptables-nft dumps), applied: the same checks pass
    import_seed(env)
    # --- bans on forwarded connections, in a router namespace of their own
    forwarding(env)


def ban_over_policy(env):
    d = f"{env.tmp}/daemon"
    os.makedirs(f"{d}/filter.d")
    with open(f"{d}/portcullis.conf", "w") as f:
        f.write(f"[Definition]\nlogtarget = {d}/portcullis.log\nsocket = {d}/p.sock\npidfile = {d}/p.pid\n"
                f"dbfile = {d}/p.sqlite3\n")
    with open(f"{d}/filter.d/e2e.conf", "w") as f:
        f.write("[Definition]\nfailregex = ^auth failure from <HOST>$\n")
    with open(f"{d}/jail.conf", "w") as f:
        f.write("[DEFAULT]\nbanaction = nftables-multiport\nprotocol = tcp\n"
                "action = %(banaction)s[port=\"%(port)s\", protocol=\"%(protocol)s\"]\n\n"
                f"[e2e]\nenabled = true\nfilter = e2e\nport = ssh,smtp,submissions,submission,imaps,pop3s,http\n"
                f"logpath = {d}/auth.log\n"
                "bantime = 1h\nmaxretry = 3\n")
    open(f"{d}/auth.log", "w").close()
    env.daemon = subprocess.Popen(["ip", "netns", "exec", S, env.exe, "-c", d, "-f", "start"],
                                  stdout=open(f"{d}/stdout", "w"), stderr=subprocess.STDOUT)
    up = wait_until(lambda: sh(env.exe, "-s", f"{d}/p.sock", "ping", check_rc=False).returncode == 0, 20, 0.1)
    if not check("daemon starts beside the policy", up):
        return
    r = sh(env.exe, "-s", f"{d}/p.sock", "set", "e2e", "banip", BANNED4, check_rc=False)
    check("banip through the daemon", r.returncode == 0, r.stderr)
    allowed = [f"tcp/{p}" for p in TCP_PORTS if p not in [4949, 8081] + PLAIN_MAIL]
    res = probe(O, BANNED4, SERVER4, allowed)
    check("banned address refused on every TCP port the policy allows (sshd, Postfix, Dovecot, http)",
          res == {item: "refused" for item in allowed}, res)
    check("the ban table and the policy table are both loaded",
          "table inet portcullis\n" in sh("nft", "list", "tables", ns=S).stdout + "\n" and env.table() is not None)
    seen = greet(O, CLIENT4, SERVER4, [22] + MAIL_PORTS)
    check("an address not banned still reaches sshd, Postfix and Dovecot", answers(seen, [22] + MAIL_PORTS), seen)
    sh(env.exe, "-s", f"{d}/p.sock", "stop", check_rc=False)
    try:
        env.daemon.wait(10)
    except subprocess.TimeoutExpired:
        env.daemon.kill()
    env.daemon = None


def forwarding(env):
    """Bans on forwarded connections: a router namespace forwards between a client link (198.51.100.0/24,
    2001:db8:10::/64) and a server link (203.0.113.0/24, 2001:db8:20::/64); the daemon runs in the router with a
    jail on port ssh and `banforward` left at auto. The banned client's forwarded connection to the server's port
    is refused, the other client's is not, a port outside the jail stays open, a flushed ruleset comes back with
    the forward chain, and `banforward = no` on reload removes it."""
    d = f"{env.tmp}/router"
    os.makedirs(f"{d}/filter.d")
    for ns in (R, C, V):
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", RC, "type", "veth", "peer", "name", CR)
    sh("ip", "link", "add", RV, "type", "veth", "peer", "name", VR)
    for dev, ns in ((RC, R), (RV, R), (CR, C), (VR, V)):
        sh("ip", "link", "set", dev, "netns", ns)
    for ns, dev, addrs in ((R, RC, [ROUTER_C4 + "/24", ROUTER_C6 + "/64"]), (R, RV, [ROUTER_V4 + "/24", ROUTER_V6 + "/64"]),
                           (C, CR, [FWD_CLIENT4 + "/24", FWD_OTHER4 + "/24", FWD_CLIENT6 + "/64", FWD_OTHER6 + "/64"]),
                           (V, VR, [FWD_SERVER4 + "/24", FWD_SERVER6 + "/64"])):
        for a in addrs:
            sh("ip", "-6" if ":" in a else "-4", "addr", "add", a, "dev", dev, *(["nodad"] if ":" in a else []), ns=ns)
        sh("ip", "link", "set", dev, "up", ns=ns)
        sh("ip", "link", "set", "lo", "up", ns=ns)
    sh("ip", "route", "add", "default", "via", ROUTER_C4, ns=C)
    sh("ip", "-6", "route", "add", "default", "via", ROUTER_C6, ns=C)
    sh("ip", "route", "add", "default", "via", ROUTER_V4, ns=V)
    sh("ip", "-6", "route", "add", "default", "via", ROUTER_V6, ns=V)
    sh("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1", ns=R)
    env.server = subprocess.Popen(["ip", "netns", "exec", V, "/usr/bin/python3", "-c", LISTEN, "22", "80"],
                                  stdout=subprocess.PIPE, text=True)
    env.server.stdout.readline()
    with open(f"{d}/portcullis.conf", "w") as f:
        f.write(f"[Definition]\nlogtarget = {d}/portcullis.log\nsocket = {d}/p.sock\npidfile = {d}/p.pid\n"
                f"dbfile = {d}/p.sqlite3\n")
    with open(f"{d}/filter.d/e2e.conf", "w") as f:
        f.write("[Definition]\nfailregex = ^auth failure from <HOST>$\n")
    with open(f"{d}/jail.conf", "w") as f:
        f.write("[DEFAULT]\nbanaction = nftables-multiport\nprotocol = tcp\n"
                "action = %(banaction)s[port=\"%(port)s\", protocol=\"%(protocol)s\"]\n\n"
                f"[fwd]\nenabled = true\nfilter = e2e\nport = ssh\nlogpath = {d}/auth.log\nbantime = 1h\n")
    open(f"{d}/auth.log", "w").close()
    items = ["tcp/22", "tcp/80"]
    both_open = {"tcp/22": "open", "tcp/80": "open"}
    # Both families through the router before any ban (waiting for neighbour discovery on the new links).
    res = wait_until(lambda: (lambda r: r if r[0] == r[1] == both_open else None)(
        (probe(C, FWD_CLIENT4, FWD_SERVER4, items), probe(C, FWD_CLIENT6, FWD_SERVER6, items))), 10, 0.2)
    check("forwarding: the client reaches the server through the router before any ban (IPv4 and IPv6)",
          res is not None, res)
    sock = f"{d}/p.sock"
    env.router_daemon = subprocess.Popen(["ip", "netns", "exec", R, env.exe, "-c", d, "-f", "start"],
                                         stdout=open(f"{d}/stdout", "w"), stderr=subprocess.STDOUT)
    up = wait_until(lambda: sh(env.exe, "-s", sock, "ping", check_rc=False).returncode == 0, 20, 0.1)
    if not check("forwarding: daemon starts in the router namespace", up):
        return
    log = open(f"{d}/portcullis.log").read()
    check("forwarding: the daemon says bans apply to forwarded connections, and why",
          "forwarded connections are banned for: fwd (host: net.ipv4.ip_forward = 1, "
          "net.ipv6.conf.all.forwarding = 1" in log, log[-400:])
    table = sh("nft", "list", "table", "inet", "portcullis", ns=R).stdout
    check("forwarding: the ban table has a forward-hook chain with the jail's rules",
          "chain bans-forward {" in table and "hook forward" in table
          and "tcp dport 22 ip saddr @addr-set-fwd reject with tcp reset" in table.split("chain bans-forward {")[1],
          table)
    for a in (FWD_CLIENT4, FWD_CLIENT6):
        r = sh(env.exe, "-s", sock, "set", "fwd", "banip", a, check_rc=False)
        check(f"forwarding: banip {a}", r.returncode == 0, r.stderr)
    res4 = probe(C, FWD_CLIENT4, FWD_SERVER4, items)
    res6 = probe(C, FWD_CLIENT6, FWD_SERVER6, items)
    check("forwarding: the banned client's forwarded connection to the jail's port is refused, another port is open",
          res4 == {"tcp/22": "refused", "tcp/80": "open"} and res6 == {"tcp/22": "refused", "tcp/80": "open"},
          (res4, res6))
    other = probe(C, FWD_OTHER4, FWD_SERVER4, items), probe(C, FWD_OTHER6, FWD_SERVER6, items)
    check("forwarding: another client is not banned (IPv4 and IPv6)",
          all(o == {"tcp/22": "open", "tcp/80": "open"} for o in other), other)
    # Someone flushes the router's ruleset: the daemon rebuilds the table, forward chain included.
    sh("nft", "flush", "ruleset", ns=R)
    t0 = time.monotonic()
    back = wait_until(lambda: "chain bans-forward {" in sh("nft", "list", "table", "inet", "portcullis", ns=R,
                                                             check_rc=False).stdout, 5, 0.02)
    took = time.monotonic() - t0
    check("forwarding: after `nft flush ruleset` the forward chain is back within a second", back and took < 1.0,
          f"{took:.2f} s")
    res = probe(C, FWD_CLIENT4, FWD_SERVER4, items)
    check("forwarding: after the repair the banned client is refused again",
          res == {"tcp/22": "refused", "tcp/80": "open"}, res)
    print(f"policy: forward chain restored {took * 1000:.0f} ms after a flushed ruleset", flush=True)
    # banforward = no: only the host itself is protected; the forward chain goes at reload.
    with open(f"{d}/jail.local", "w") as f:
        f.write("[fwd]\nbanforward = no\n")
    r = sh(env.exe, "-s", sock, "reload", check_rc=False)
    table = sh("nft", "list", "table", "inet", "portcullis", ns=R).stdout
    res = probe(C, FWD_CLIENT4, FWD_SERVER4, items)
    check("forwarding: banforward = no removes the forward chain and the client's forwarded connection passes",
          r.returncode == 0 and "bans-forward" not in table and "@addr-set-fwd" in table
          and res == {"tcp/22": "open", "tcp/80": "open"}, (r.stderr, table, res))
    with open(f"{d}/jail.local", "w") as f:
        f.write("[fwd]\nbanforward = sometimes\n")
    r = sh(env.exe, "-s", sock, "reload", check_rc=False)
    log = open(f"{d}/portcullis.log").read()
    check("forwarding: a bad banforward value is refused with the file and line",
          r.returncode != 0 and "banforward must be auto, yes or no, not 'sometimes'" in (r.stdout + r.stderr + log)
          and "jail.local:2" in (r.stdout + r.stderr + log), (r.returncode, r.stdout, r.stderr, log[-300:]))
    sh(env.exe, "-s", sock, "stop", check_rc=False)
    try:
        env.router_daemon.wait(10)
    except subprocess.TimeoutExpired:
        env.router_daemon.kill()
    env.router_daemon = None


def audit_json(env):
    r = env.pcl("audit", "-c", env.conf, "--json")
    try:
        return r.returncode, json.loads(r.stdout)
    except ValueError:
        return r.returncode, {"error": r.stdout + r.stderr, "sockets": [], "findings": []}


def nmap_open(family):
    """Ports nmap (TCP SYN and UDP scans from the outside namespace) reports open on the server's address."""
    target = SERVER4 if family == "ipv4" else SERVER6
    ports = "T:" + ",".join(map(str, TCP_PORTS)) + ",U:" + ",".join(map(str, UDP_PORTS))
    # At most 10 probes a second: the policy's port-scan guard (20/second, burst 20) must not take nmap for a scanner.
    time.sleep(1.5)
    # From the client's address (the outside link also carries the bogon sources, which the policy drops).
    source = CLIENT4 if family == "ipv4" else CLIENT6
    cmd = ["nmap", "-n", "-Pn", "-sS", "-sU", "-p", ports, "--max-retries", "2", "--max-rate", "10", "-e", OS_,
           "-S", source, "-oG", "-", target]
    if family == "ipv6":
        cmd.insert(1, "-6")
    out = sh(*cmd, ns=O, check_rc=False, timeout=120).stdout
    found = set()
    for line in out.splitlines():
        if "Ports:" in line:
            for item in line.split("Ports:")[1].split("\t")[0].split(","):
                f = item.strip().split("/")
                if len(f) > 2 and f[1] == "open":
                    found.add(f"{f[2]}/{f[0]}")
    return found


def audit_against_probe(env, label, expect_findings):
    """The audit's view (reachable from anywhere, per family) against a connect/UDP probe and nmap from outside."""
    rc, report = audit_json(env)
    check(f"audit {label}: exit status {1 if expect_findings else 0}", rc == (1 if expect_findings else 0),
          report.get("error", ""))
    listed = {(s["proto"], s["port"]) for s in report["sockets"]}
    owners = sorted({(s["proto"], s["port"], s["family"], s["process"]) for s in report["sockets"]})
    check(f"audit {label}: exactly the real daemons and the test listeners are listed, each with its process",
          listed == {("tcp", n) for n in TCP_PORTS} | {("udp", n) for n in UDP_PORTS}
          and all(s["process"] in OWNERS.get(s["port"], {"python3"}) and s["pid"] for s in report["sockets"]), owners)
    print(f"policy: audit {label}: " + ", ".join(dict.fromkeys(f"{p}/{n} {proc}" for p, n, _, proc in owners)),
          flush=True)
    agree = {}
    for family, src, dst in (("ipv4", CLIENT4, SERVER4), ("ipv6", CLIENT6, SERVER6)):
        audit_open = {f"{s['proto']}/{s['port']}" for s in report["sockets"]
                      if s["family"] == family and s["reachable"] == "anywhere"}
        items = sorted({f"{s['proto']}/{s['port']}" for s in report["sockets"]} | set(outside_items()))
        seen = probe(O, src, dst, items, gap=0.08)
        probe_open = {k for k, v in seen.items() if v == "open"}
        check(f"audit {label} {family}: reachable ports equal the probe's, port for port", audit_open == probe_open,
              f"audit {sorted(audit_open)} probe {sorted(probe_open)}")
        agree[family] = (len(audit_open & probe_open), len(audit_open | probe_open))
        if shutil.which("nmap"):
            seen_nmap = nmap_open(family)
            check(f"audit {label} {family}: reachable ports equal nmap's open ports", audit_open == seen_nmap,
                  f"audit {sorted(audit_open)} nmap {sorted(seen_nmap)}")
        else:
            check("nmap is installed (scripts/deps.sh --test)", False)
        intended = {f"{s['proto']}/{s['port']}" for s in report["sockets"]
                    if s["family"] == family and s["intended"] == "anywhere"}
        flagged = {f"{f['proto']}/{f['port']}" for f in report["findings"]
                   if f["family"] == family and f["kind"] in ("exposed-not-in-policy", "wider-than-policy")}
        check(f"audit {label} {family}: findings are exactly what is open but not intended",
              flagged == probe_open - intended, f"findings {sorted(flagged)} open-not-intended {sorted(probe_open - intended)}")
    print(f"policy: audit {label}: agreement with the probe ipv4 {agree['ipv4'][0]}/{agree['ipv4'][1]}, "
          f"ipv6 {agree['ipv6'][0]}/{agree['ipv6'][1]} ports", flush=True)
    return report


def audit_before(env):
    report = audit_against_probe(env, "without a policy", True)
    kinds = {(f["kind"], f["proto"], f["port"], f["family"]) for f in report["findings"]}
    check("audit: the stray TCP service is reported on both families (dual-stack socket)",
          ("exposed-not-in-policy", "tcp", 8081, "ipv4") in kinds and ("exposed-not-in-policy", "tcp", 8081, "ipv6") in kinds,
          sorted(kinds))
    check("audit: the stray UDP service is reported", ("exposed-not-in-policy", "udp", 5355, "ipv4") in kinds)
    check("audit: Dovecot's plain-text IMAP and POP3 (143, 110), which the policy does not allow, are reported",
          all(("exposed-not-in-policy", "tcp", p, fam) in kinds for p in PLAIN_MAIL for fam in ("ipv4", "ipv6")),
          sorted(kinds))
    check("audit: admin-only munin reachable from anywhere is wider than the policy",
          ("wider-than-policy", "tcp", 4949, "ipv4") in kinds and ("wider-than-policy", "tcp", 4949, "ipv6") in kinds)
    r = env.pcl("audit", "-c", env.conf)
    check("audit plain output: a table and the findings",
          r.stdout.startswith("note: no policy table is loaded") and "PROTO  PORT" in r.stdout
          and "exposed-not-in-policy: tcp/8081" in r.stdout, r.stdout)


def audit_after(env):
    report = audit_against_probe(env, "with the policy", False)
    check("audit with the policy: the loaded table is the policy's", report.get("loaded") == "same", report.get("loaded"))
    check("audit with the policy: no findings", report["findings"] == [], report["findings"])
    munin = {s["family"]: s["reachable"] for s in report["sockets"] if s["port"] == 4949}
    check("audit with the policy: munin reachable from the admin group only", munin == {"ipv4": "admin", "ipv6": "admin"},
          munin)
    seen = probe(A, ADMIN4, ADMIN_SERVER4, ["tcp/4949"])
    check("audit with the policy: and the admin namespace does reach it", seen == {"tcp/4949": "open"}, seen)


def import_seed(env):
    """The seed's iptables ruleset (tests/e2e/policy/seed.rules, IPv4 and IPv6) restored with iptables-nft in a
    namespace of its own, saved again, imported, and applied: the same reachability checks must pass."""
    seed = open(os.path.join(ROOT, "tests/e2e/policy/seed.rules")).read()
    cut = seed.rindex("*filter")
    v4, v6 = seed[:cut], seed[cut:]
    ns = f"pcl-policy-i-{PID}"
    sh("ip", "netns", "add", ns)
    try:
        for tool, part in (("iptables-restore", v4), ("ip6tables-restore", v6)):
            r = subprocess.run(["ip", "netns", "exec", ns, tool], input=part, text=True, capture_output=True)
            if not check(f"{tool} (iptables-nft) loads the seed ruleset in its namespace", r.returncode == 0, r.stderr):
                return
        dump = sh("iptables-save", ns=ns).stdout + sh("ip6tables-save", ns=ns).stdout
        legacy = subprocess.run(["ip", "netns", "exec", ns, "iptables-legacy-restore"], input=v4, text=True,
                                capture_output=True)
        if legacy.returncode == 0:
            dump += sh("iptables-legacy-save", ns=ns).stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    with open(f"{env.tmp}/real-dump.rules", "w") as f:
        f.write(dump)
    conf2 = f"{env.tmp}/imported"
    os.makedirs(conf2)
    r = env.pcl("firewall", "import", f"{env.tmp}/real-dump.rules", "-o", f"{conf2}/firewall.conf", ns=None)
    summary = r.stderr.splitlines()[0] if r.stderr else ""
    print(f"policy: import of the real iptables-nft dump: {summary.removeprefix('import: ')}", flush=True)
    check("import of the real dump exits 0 and counts what it carried over", r.returncode == 0
          and "rules carried over" in summary, r.stderr)
    check("import lists the rules it could not carry over, with reasons",
          "match module 'addrtype' has no equivalent" in r.stderr and "table nat: only the filter table" in r.stderr,
          r.stderr)
    text = open(f"{conf2}/firewall.conf").read()
    check("imported policy: services, the admin group with both families, bogons, port-scan guard",
          "ssh = ssh" in text and "from sources1" in text and "198.51.100.0/24, 2001:db8:1::/48" in text
          and "203.0.113.0/24" in text and "2001:db8:bad::/48" in text and "rate = 20/second" in text, text)
    r = env.pcl("firewall", "import", os.path.join(ROOT, "tests/e2e/policy/seed-v4.rules"), ns=None)
    check("an IPv4-only dump gives the same intent for IPv6, and says so",
          r.returncode == 0 and "applies the same services, defaults and guards to IPv6" in r.stderr
          and ", ::1, fc00::/7" in r.stdout, r.stderr)
    # Apply the imported policy on the server and run the same checks.
    r = env.pcl("firewall", "apply", "-c", conf2, "--run-dir", env.run, "--timeout", "30")
    check("the imported policy applies", r.returncode == 0, r.stderr)
    time.sleep(1.5)  # the scans above filled the port-scan meters; let the client's bucket refill
    out4 = probe(O, CLIENT4, SERVER4, outside_items(), gap=0.08)
    out6 = probe(O, CLIENT6, SERVER6, outside_items(), gap=0.08)
    check("imported policy, outside IPv4: same reachability", out4 == WANT, out4)
    check("imported policy, outside IPv6: same reachability", out6 == WANT, out6)
    real_daemons("imported policy", "refused")
    adm = (probe(A, ADMIN4, ADMIN_SERVER4, ["tcp/4949"]), probe(A, ADMIN6, ADMIN_SERVER6, ["tcp/4949"]))
    check("imported policy: munin from the admin namespace on both families",
          adm == ({"tcp/4949": "open"}, {"tcp/4949": "open"}), adm)
    check("imported policy: bogon sources dropped on both families",
          probe(O, BOGON4, SERVER4, ["tcp/22"]).get("tcp/22") == "timeout"
          and probe(O, BOGON6, SERVER6, ["tcp/22"]).get("tcp/22") == "timeout")
    r = env.fw("confirm")
    check("imported policy confirmed", r.returncode == 0, r.stderr)
    # The loaded table read back through nft's JSON listing gives the same services.
    js = sh("nft", "-j", "list", "table", "inet", "portcullis-policy", ns=S).stdout
    with open(f"{env.tmp}/loaded.json", "w") as f:
        f.write(js)
    r = env.pcl("firewall", "import", f"{env.tmp}/loaded.json", ns=None)
    check("nft JSON of the loaded table imports back to the same services",
          r.returncode == 0 and "ssh = ssh" in r.stdout
          and "= smtp, http, submissions, submission, imaps, pop3s" in r.stdout
          and "udp/53" in r.stdout and "198.51.100.0/24" in r.stdout, r.stdout + r.stderr)
    print(f"policy: import of nft JSON: {(r.stderr.splitlines() or [''])[0].removeprefix('import: ')}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--portcullis", default=os.path.join(ROOT, ".build/debug/portcullis"))
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("policy: must run as root (network namespaces, nftables)")
        print("policy: 0 passed, 1 failed")
        return 1
    for tool in ("ip", "nft", "iptables-restore", "iptables-save", "nmap", "/usr/sbin/sshd", "ssh-keygen", "unshare",
                 "nsenter", "openssl", "/usr/sbin/postfix", "/usr/sbin/dovecot", "/usr/sbin/munin-node",
                 "/usr/sbin/rsyslogd"):
        if shutil.which(tool) is None:
            print(f"policy: {tool} is missing")
            print("policy: 0 passed, 1 failed")
            return 1
    env = Env(os.path.abspath(args.portcullis))
    try:
        env.setup()
        run_tests(env)
    except Exception as e:  # a setup or harness failure is a failed check, never a skip
        check(f"harness: {type(e).__name__}: {e}", False)
    finally:
        env.cleanup()
    passed = sum(1 for _, ok in results if ok)
    failed = len(results) - passed
    print(f"policy: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
