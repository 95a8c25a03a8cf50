# syntax=docker/dockerfile:1
# One image for every Hookyard process: the entrypoint is the `hookyard` command, so
#   docker run --rm hookyard --help
#   docker run --rm -e DATABASE_URL=... hookyard migrate
#   docker run --rm -p 8000:8000 -e AMQP_URL=... -e DATABASE_URL=... hookyard    # serve on 0.0.0.0:8000
# docker-compose.yml runs migrate, web, worker and scheduler from it.
#
# Nothing secret is baked in: DATABASE_URL, AMQP_URL, the webhook secrets and HOOKYARD_INGEST_TOKEN
# come from the environment at run time. No compiler is installed: psycopg[binary], uvloop, httptools
# and orjson all ship manylinux wheels for CPython 3.11.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: a virtualenv holding the project and its dependencies, copied whole into the runtime ---
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/hookyard
ENV PATH=/opt/hookyard/bin:$PATH
WORKDIR /src

# Dependencies first, read from pyproject.toml, so a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt

# Then the project itself: a regular (not editable) install, so /src is not needed at run time.
COPY . .
RUN pip install --no-deps . \
    && hookyard --help > /dev/null

# --- runtime: the slim base, the virtualenv, and an unprivileged user ---
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="hookyard" \
      org.opencontainers.image.description="Event-ingestion fleet: signed webhooks in over HTTP, RabbitMQ in the middle, PostgreSQL exactly once." \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/hookyard/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 hookyard \
    && useradd --system --uid 10001 --gid hookyard --home-dir /home/hookyard --create-home \
        --shell /usr/sbin/nologin hookyard

COPY --from=build /opt/hookyard /opt/hookyard

USER 10001:10001
WORKDIR /home/hookyard

# 8000: ingestion HTTP server (and its /metrics); 9191: the worker's metrics (one port per worker process).
EXPOSE 8000 9191

ENTRYPOINT ["hookyard"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
