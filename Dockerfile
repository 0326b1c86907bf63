# syntax=docker/dockerfile:1
# lakegate image: a wheel built in one stage, installed into a virtual environment in the next.
#
#   docker build -t lakegate:0.1.0 .
#   docker run --rm -p 8080:8080 lakegate:0.1.0    # starts; /readyz says what to configure
#   docker run --rm -p 8080:8080 -v "$PWD/my-lakegate:/etc/lakegate:ro" lakegate:0.1.0
#
# The image's /etc/lakegate/gateway.yaml (config/docker/gateway.yaml) runs outside Kubernetes
# (kubernetes.mode: off) and lets nobody in until you mount your own configuration. In
# Kubernetes (deploy/) the configuration is a ConfigMap mounted over /etc/lakegate and the
# ledger a PersistentVolumeClaim mounted at /var/lib/lakegate.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the project's wheel and every dependency's wheel --------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
COPY pyproject.toml README.md ./
COPY gateway ./gateway
# Wheels for lakegate and all its dependencies, so the runtime stage installs offline and
# never needs a compiler or the network.
RUN python -m pip wheel --wheel-dir /wheels .

# --- runtime: the virtual environment, nothing else from the build -------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/lakegate \
    PATH=/opt/lakegate/bin:$PATH

# A numeric uid/gid, so Kubernetes can verify runAsNonRoot without resolving a user name.
RUN groupadd --system --gid 10001 lakegate \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin lakegate \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/lakegate \
 && install -d -m 0755 /etc/lakegate

# The wheels are bind-mounted from the build stage, so they never become a layer of this image.
# pip compiles the bytecode here, at build time: the root filesystem is read-only at run time.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv "$VIRTUAL_ENV" \
 && "$VIRTUAL_ENV/bin/pip" install --no-index --find-links /wheels lakegate \
 && lakegate --version

# A default configuration that starts outside Kubernetes, so `docker run` works; Kubernetes
# mounts its ConfigMap over it.
COPY config/docker/gateway.yaml /etc/lakegate/

# The SQLite ledger (and its -wal/-shm files) lives here; mount a volume to keep it.
VOLUME ["/var/lib/lakegate"]
WORKDIR /var/lib/lakegate
USER 10001:10001
EXPOSE 8080

ENTRYPOINT ["lakegate"]
CMD ["serve", "--config", "/etc/lakegate/gateway.yaml"]
