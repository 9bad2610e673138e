# syntax=docker/dockerfile:1
# One image for every part of Mirror: `mirror central|agent|gateway|ftp|migrate`.

# --- build: install the package into a virtualenv --------------------------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# README.m[d]: copied when present (setup.cfg reads it as the long description).
COPY setup.cfg pyproject.toml README.m[d] ./
COPY services/ services/
COPY adapters/ adapters/
COPY db/ db/
COPY gateway/ gateway/
# No compiler needed: the binary dependencies ship manylinux wheels and the
# two sdists (psycogreen, pyftpdlib) are pure Python. The last line fails the
# build if the alembic env.py was not packaged (`mirror central` migrates at start).
RUN python -m venv /opt/mirror \
 && /opt/mirror/bin/pip install . \
 && /opt/mirror/bin/mirror --help >/dev/null \
 && /opt/mirror/bin/python -c "from db.migrate import MIGRATIONS as m; assert (m / 'env.py').is_file(), 'db/migrations/env.py missing from the installed package'"

# --- runtime: the virtualenv and the config, nothing else ------------------
FROM python:3.11-slim
ENV PATH=/opt/mirror/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# /data/ftp and /data/work exist and belong to the user so that the named
# volumes mounted there start with that owner.
RUN groupadd --system --gid 10001 mirror \
 && useradd --system --uid 10001 --gid mirror --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin mirror \
 && mkdir -p /data/ftp /data/work \
 && chown -R mirror:mirror /data
COPY --from=build /opt/mirror /opt/mirror
WORKDIR /app
COPY config/ config/
USER mirror
EXPOSE 8000 2121 30000-30009
ENTRYPOINT ["mirror"]
CMD ["--help"]
