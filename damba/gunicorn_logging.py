"""A gunicorn logger class whose lines match Damba's and never show an access key."""

from __future__ import annotations

from gunicorn.glogging import Logger

from damba.config import load_settings
from damba.web.logs import RedactingFilter, make_formatter, redact_path


class RedactingLogger(Logger):
    """gunicorn's logger, in DAMBA_LOG_FORMAT, with keys redacted from every line.

    The error log matters too: gunicorn logs a malformed request's request
    line, path included, when it rejects it.
    """

    def setup(self, cfg) -> None:
        super().setup(cfg)
        self.error_log.addFilter(RedactingFilter())
        # gunicorn marks the handlers it adds with a _gunicorn attribute. They
        # get the formatter of Damba's own loggers, so a process writes one format.
        formatter = make_formatter(load_settings().log_format)
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(formatter)

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {
            name: redact_path(value) if isinstance(value, str) else value
            for name, value in atoms.items()
        }
