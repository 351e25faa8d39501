"""A real SMTP server for the email channel's tests: aiosmtpd (PyPI) requiring STARTTLS before
AUTH, with one user, appending every message it accepts to a JSON-lines file.

python3 smtp_server.py --port P --cert C --key K --user U --password PW --out FILE
prints "ready" once it listens on 127.0.0.1:P."""

import argparse
import json
import ssl
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

parser = argparse.ArgumentParser()
for flag in ("--cert", "--key", "--user", "--password", "--out"):
    parser.add_argument(flag, required=True)
parser.add_argument("--port", type=int, required=True)
args = parser.parse_args()


class Record:
    async def handle_DATA(self, server, session, envelope):
        with open(args.out, "a", encoding="utf-8") as out:
            out.write(
                json.dumps(
                    {
                        "from": envelope.mail_from,
                        "to": envelope.rcpt_tos,
                        "data": envelope.content.decode("utf-8", "replace"),
                        "authenticated": bool(session.authenticated),
                        "tls": session.ssl is not None,
                    }
                )
                + "\n"
            )
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == args.user.encode()
        and auth_data.password == args.password.encode()
    )
    return AuthResult(success=ok)


context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(args.cert, args.key)
controller = Controller(
    Record(),
    hostname="127.0.0.1",
    port=args.port,
    tls_context=context,
    require_starttls=True,
    auth_required=True,
    auth_require_tls=True,
    authenticator=authenticate,
)
controller.start()
print("ready", flush=True)
try:
    while True:
        time.sleep(3600)
except KeyboardInterrupt:
    controller.stop()
