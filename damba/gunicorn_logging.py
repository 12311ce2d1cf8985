"""A gunicorn logger class whose log lines never show an access key."""

from __future__ import annotations

from gunicorn.glogging import Logger

from damba.web.logs import RedactingFilter, redact_path


class RedactingLogger(Logger):
    """gunicorn's logger, with keys redacted from the access log and the error log.

    The error log matters too: gunicorn logs a malformed request's request
    line, path included, when it rejects it.
    """

    def setup(self, cfg) -> None:
        super().setup(cfg)
        self.error_log.addFilter(RedactingFilter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            name: redact_path(value) if isinstance(value, str) else value
            for name, value in atoms.items()
        }
