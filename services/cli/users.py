"""The ``mirror user`` commands: add, list, token, revoke, passwd (central's ``user`` service).

They run over the broker, inside the mesh, as the admin ``local``. A token is
printed once, alone on stdout, so that ``TOKEN=$(mirror user add ann)`` works;
only its hash is kept.
"""

import getpass
import sys

from services.cli.errors import CommandError
from services.cli.rendering import table, text, when


def print_token(out, answer, what):
    """The token on stdout alone; what it is on stderr."""
    print(answer["token"], flush=True)
    print(
        f"{what} for {answer['name']}: shown this once, keep it "
        "(send it as `Authorization: Bearer <token>`)",
        file=sys.stderr,
    )


def user_add(client, args, out):
    answer = client.call("user", "add", name=args.name, admin=int(args.admin))
    print_token(out, answer, "admin token" if args.admin else "token")


def user_list(client, args, out):
    rows = table("NAME", "ADMIN", "CREATED", "PASSWORD", "REVOKED")
    for user in client.call("user", "list"):
        rows.add_row(
            text(user["name"]),
            text("yes" if user["admin"] else "no"),
            text(when(user.get("created"))),
            text("yes" if user.get("has_password") else "no"),
            text(when(user["revoked"]) if user.get("revoked") else "no"),
        )
    out.print(rows)


def user_token(client, args, out):
    print_token(out, client.call("user", "token", name=args.name), "new token")


def user_revoke(client, args, out):
    client.call("user", "revoke", name=args.name)
    out.print(f"user {args.name} revoked: token and password refused", markup=False)


def read_password(stdin=None, ask=getpass.getpass):
    """A password typed twice on a terminal, or the first line of piped stdin."""
    stdin = stdin or sys.stdin
    if not stdin.isatty():
        password = stdin.readline().rstrip("\r\n")
    else:
        password = ask("New password: ")
        if ask("Again: ") != password:
            raise CommandError("the two passwords differ")
    if not password:
        raise CommandError("empty password")
    return password


def user_passwd(client, args, out):
    client.call("user", "passwd", name=args.name, password=read_password())
    out.print(f"password of {args.name} set", markup=False)
