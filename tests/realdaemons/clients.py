#!/usr/bin/python3
"""Mail clients for the real-daemon captures: IMAP, POP3 and SMTP logins with every SASL mechanism Dovecot offers.

Run inside a client network namespace. Every attempt is bounded by a socket timeout; failures are expected and
reported on stderr, never raised. TLS certificates are not verified (the server's is self-signed, in our namespace).

Usage:
  clients.py imap  HOST PORT USER PASSWORD METHOD [COUNT]   METHOD: login | plain | login-sasl | cram-md5 |
                                                                    scram-sha-1 | scram-sha-256 |
                                                                    none (no attempt) | abandon (SASL halfway)
  clients.py pop3  HOST PORT USER PASSWORD METHOD [COUNT]   METHOD: user | plain | cram-md5 | scram-sha-1 | …
  clients.py smtp  HOST PORT USER PASSWORD METHOD [COUNT]   METHOD: plain | login-sasl | cram-md5 | scram-…
  clients.py smtp-rcpt HOST PORT HELO SENDER RECIPIENT      one unauthenticated mail transaction
Ports 993, 995 and 465 use implicit TLS; 587 uses STARTTLS; others are plain text.
COUNT attempts are made in one connection (default 1). Exit status 0 when every attempt succeeded, 1 otherwise.
"""

import base64
import hashlib
import hmac
import imaplib
import os
import poplib
import smtplib
import socket
import ssl
import sys

TIMEOUT = 40


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Scram:
    """A SCRAM client (RFC 5802/7677): step(None) gives client-first, then each server challenge gives a reply."""

    def __init__(self, hash_name, user, password):
        self.hash_name, self.user, self.password = hash_name, user, password
        self.state = 0

    def step(self, challenge):
        if self.state == 0:
            self.state = 1
            self.nonce = base64.b64encode(os.urandom(18)).decode()
            user = self.user.replace("=", "=3D").replace(",", "=2C")
            self.first_bare = "n=%s,r=%s" % (user, self.nonce)
            return "n,," + self.first_bare
        if self.state == 1:
            self.state = 2
            server_first = challenge.decode()
            fields = dict(kv.split("=", 1) for kv in server_first.split(","))
            salt = base64.b64decode(fields["s"])
            salted = hashlib.pbkdf2_hmac(self.hash_name, self.password.encode(), salt, int(fields["i"]))
            client_key = hmac.new(salted, b"Client Key", self.hash_name).digest()
            stored_key = hashlib.new(self.hash_name, client_key).digest()
            without_proof = "c=biws,r=" + fields["r"]
            auth_message = ",".join([self.first_bare, server_first, without_proof]).encode()
            signature = hmac.new(stored_key, auth_message, self.hash_name).digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            return without_proof + ",p=" + base64.b64encode(proof).decode()
        return ""


class Mechanism:
    """Responses for one SASL exchange; `respond(challenge_bytes_or_None)` returns the client's text."""

    def __init__(self, name, user, password):
        self.name, self.user, self.password = name, user, password
        self.scram = None
        self.login_step = 0
        if name.startswith("scram-"):
            self.scram = Scram({"scram-sha-1": "sha1", "scram-sha-256": "sha256"}[name], user, password)

    @property
    def wire_name(self):
        return {"login-sasl": "LOGIN"}.get(self.name, self.name.upper())

    def initial(self):
        """The initial response, or None when the mechanism starts with a server challenge."""
        if self.name == "plain":
            return "\0%s\0%s" % (self.user, self.password)
        if self.scram:
            return self.scram.step(None)
        return None

    def respond(self, challenge):
        if self.name == "login-sasl":
            self.login_step += 1
            return self.user if self.login_step == 1 else self.password
        if self.name == "cram-md5":
            digest = hmac.new(self.password.encode(), challenge, hashlib.md5).hexdigest()
            return "%s %s" % (self.user, digest)
        if self.scram:
            return self.scram.step(challenge)
        return ""


def imap(host, port, user, password, method, count):
    cls = imaplib.IMAP4_SSL if port == 993 else imaplib.IMAP4
    kw = {"ssl_context": tls_context()} if port == 993 else {}
    conn = cls(host, port, timeout=TIMEOUT, **kw)
    ok = True
    if method == "none":
        # Connect and leave without trying to log in.
        conn.logout()
        return False
    if method == "abandon":
        # Start a SCRAM exchange, send the first message, and hang up halfway.
        conn.send(b"a1 AUTHENTICATE SCRAM-SHA-256\r\n")
        conn.readline()
        conn.send(base64.b64encode(Scram("sha256", user, password).step(None).encode()) + b"\r\n")
        conn.readline()
        conn.shutdown()
        return False
    for _ in range(count):
        try:
            if method == "login":
                conn.login(conn._quote(user) if ' ' in user else user, password)
            else:
                mech = Mechanism(method, user, password)
                started = [not (mech.scram or method == "plain")]

                def answer(challenge, mech=mech, started=started):
                    # imaplib sends no initial response: PLAIN's and SCRAM's first message answer the empty "+".
                    if not started[0]:
                        started[0] = True
                        return mech.initial().encode()
                    return mech.respond(challenge).encode()

                conn.authenticate(mech.wire_name, answer)
        except (imaplib.IMAP4.error, OSError, KeyError, ValueError) as e:
            ok = False
            print("imap %s %s: %s" % (method, user, e), file=sys.stderr)
            if isinstance(e, OSError):
                return False
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError):
        pass
    return ok


def pop3(host, port, user, password, method, count):
    conn = poplib.POP3_SSL(host, port, timeout=TIMEOUT, context=tls_context()) if port == 995 \
        else poplib.POP3(host, port, timeout=TIMEOUT)
    ok = True
    for _ in range(count):
        try:
            if method == "user":
                conn.user(user)
                conn.pass_(password)
            else:
                mech = Mechanism(method, user, password)
                init = mech.initial()
                if init is not None and method == "plain":
                    resp = conn._shortcmd("AUTH %s %s" % (mech.wire_name, base64.b64encode(init.encode()).decode()))
                else:
                    conn._putcmd("AUTH %s" % mech.wire_name)
                    line, _ = conn._getline()
                    if init is not None:
                        # SCRAM: the server's empty "+ " asks for the client-first message.
                        conn._putcmd(base64.b64encode(init.encode()).decode())
                        line, _ = conn._getline()
                    while line.startswith(b"+"):
                        challenge = base64.b64decode(line[1:].strip() or b"")
                        conn._putcmd(base64.b64encode(mech.respond(challenge).encode()).decode())
                        line, _ = conn._getline()
                    if not line.startswith(b"+OK"):
                        raise poplib.error_proto(line)
        except (poplib.error_proto, OSError, KeyError, ValueError) as e:
            ok = False
            print("pop3 %s %s: %s" % (method, user, e), file=sys.stderr)
            if isinstance(e, OSError):
                return False
    try:
        conn.quit()
    except (poplib.error_proto, OSError):
        pass
    return ok


def smtp_connect(host, port, helo="client.example.test"):
    if port == 465:
        conn = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=tls_context(), local_hostname=helo)
    else:
        conn = smtplib.SMTP(host, port, timeout=TIMEOUT, local_hostname=helo)
        if port == 587:
            conn.ehlo()
            conn.starttls(context=tls_context())
    conn.ehlo()
    return conn


def smtp(host, port, user, password, method, count):
    conn = smtp_connect(host, port)
    ok = True
    for _ in range(count):
        mech = Mechanism(method, user, password)

        def authobject(challenge=None):
            if challenge is None:
                init = mech.initial()
                if init is None:
                    raise ValueError("no initial response")
                return init
            return mech.respond(challenge)

        try:
            if not (mech.scram or method == "plain"):
                # LOGIN and CRAM-MD5 start with a server challenge.
                code, resp = conn.docmd("AUTH", mech.wire_name)
                while code == 334:
                    challenge = base64.b64decode(resp)
                    code, resp = conn.docmd(base64.b64encode(mech.respond(challenge).encode()).decode())
                if code != 235:
                    raise smtplib.SMTPAuthenticationError(code, resp)
            else:
                conn.auth(mech.wire_name, authobject, initial_response_ok=True)
        except (smtplib.SMTPException, OSError, ValueError, KeyError) as e:
            ok = False
            print("smtp %s %s: %s" % (method, user, e), file=sys.stderr)
            if isinstance(e, (OSError, smtplib.SMTPServerDisconnected)):
                return False
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        pass
    return ok


def smtp_rcpt(host, port, helo, sender, recipient):
    try:
        conn = smtp_connect(host, port, helo)
        code, resp = conn.mail(sender)
        if code == 250:
            code, resp = conn.rcpt(recipient)
        print("smtp rcpt %s: %s %s" % (recipient, code, resp), file=sys.stderr)
        conn.quit()
        return code == 250
    except (smtplib.SMTPException, OSError) as e:
        print("smtp rcpt %s: %s" % (recipient, e), file=sys.stderr)
        return False


def main():
    what = sys.argv[1]
    if what == "smtp-rcpt":
        host, port, helo, sender, recipient = sys.argv[2:7]
        return 0 if smtp_rcpt(host, int(port), helo, sender, recipient) else 1
    host, port, user, password, method = sys.argv[2:7]
    count = int(sys.argv[7]) if len(sys.argv) > 7 else 1
    fn = {"imap": imap, "pop3": pop3, "smtp": smtp}[what]
    try:
        return 0 if fn(host, int(port), user, password, method, count) else 1
    except (OSError, imaplib.IMAP4.error, poplib.error_proto, smtplib.SMTPException) as e:
        print("%s %s: %s" % (what, method, e), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
