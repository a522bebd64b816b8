"""A real SMTP server for the notification tests (aiosmtpd): STARTTLS and
AUTH are required, as on a mail provider's submission port. Each message
taken is written as one JSON file to OUT_DIR.

usage: smtp_server.py PORT CERT KEY OUT_DIR USER PASSWORD
"""
import json
import os
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

port, cert, key, out, user, password = sys.argv[1:7]


class Handler:
    async def handle_DATA(self, server, session, envelope):
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
            "tls": session.ssl is not None,
            "authenticated": bool(session.authenticated),
        }
        name = f"{time.time_ns()}.json"
        tmp = os.path.join(out, "." + name)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(out, name))
        return "250 Message accepted"


def authenticator(server, session, envelope, mechanism, auth_data):
    good = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    return AuthResult(success=good, handled=False)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)
controller = Controller(
    Handler(),
    hostname="127.0.0.1",
    port=int(port),
    tls_context=context,
    require_starttls=True,
    authenticator=authenticator,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
threading.Event().wait()
