# syntax=docker/dockerfile:1
# One image for every Damba service: the API (WSGI and ASGI), the command
# line, Locust and the report. docker-compose builds it as damba:0.1.0; for
# k3d, build it by hand with `docker build -t damba:0.1.0 .` and import it.

# The same Python as the development machines and CI, on Debian's slim image.
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app

# An unprivileged user with a fixed id, so Kubernetes can check runAsNonRoot
# and a mounted folder can be handed to the user by number.
RUN groupadd --system --gid 10001 damba \
 && useradd --system --uid 10001 --gid damba --home-dir /app --no-create-home damba

# The dependencies first, each pinned exactly in requirements.txt, so that a
# change to the code alone reuses this layer. setuptools builds the package
# in the next step, pinned here because pyproject.toml gives only a minimum.
COPY requirements.txt ./
RUN pip install -r requirements.txt setuptools==84.2.1

COPY . .
RUN pip install --no-deps --no-build-isolation . \
 && mkdir -p /app/reports-out \
 && chown damba:damba /app/reports-out

USER 10001:10001
ENV DAMBA_HOST=0.0.0.0 \
    DAMBA_PORT=8000
EXPOSE 8000

# `damba serve` runs gunicorn's master in this very process, so the SIGTERM
# of `docker stop` or of Kubernetes reaches gunicorn, which lets in-flight
# requests finish for up to DAMBA_GRACEFUL_TIMEOUT seconds.
CMD ["damba", "serve"]
