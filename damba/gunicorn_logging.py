"""A gunicorn logger class whose access log never shows an access key."""

from __future__ import annotations

from gunicorn.glogging import Logger

from damba.web.logs import redact_path


class RedactingLogger(Logger):
    """gunicorn's logger, with every access-log atom passed through redact_path."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            name: redact_path(value) if isinstance(value, str) else value
            for name, value in atoms.items()
        }
