"""Commands: every action a participant takes, as rules free of I/O.

Each command is a generator (see ``damba.protocol``) that the WSGI and ASGI
apps run through their drivers. ``transaction`` contains the read, decide,
commit loop. Optimistic checks, rather than rules written in a Lua script,
keep every rule in Python, and a session step costs two round trips: one
read and one conditional commit.
"""

from damba.commands.participants import add_user, kill_user
from damba.commands.replies import plural, public_route, session_reply
from damba.commands.routes import add_route, delete_route
from damba.commands.sessions import join, step, stop
from damba.commands.stream import init
from damba.commands.transaction import MAX_ATTEMPTS, Context, reject, transact

__all__ = [
    "MAX_ATTEMPTS",
    "Context",
    "add_route",
    "add_user",
    "delete_route",
    "init",
    "join",
    "kill_user",
    "plural",
    "public_route",
    "reject",
    "session_reply",
    "step",
    "stop",
    "transact",
]
