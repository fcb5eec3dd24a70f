# csbot in a container: `docker build -t csbot .` then see deploy/compose.yaml and docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user owns only its working directory (a SQLite file, if you use one, lives there).
RUN groupadd --system csbot && useradd --system --gid csbot --home-dir /var/lib/csbot --create-home csbot

WORKDIR /src
COPY pyproject.toml README.md ./
COPY csbot ./csbot
COPY scripts_library ./scripts_library
COPY templates ./templates
RUN pip install . && rm -rf /src

USER csbot
WORKDIR /var/lib/csbot
# Listen on all interfaces inside the container; publish the port (or put nginx in front) to reach it.
# Secrets (CSBOT_WEBHOOK_SECRET, CSBOT_API_TOKEN, the database password in CSBOT_DB) come from the
# environment at run time, never from the image.
ENV CSBOT_HOST=0.0.0.0 \
    CSBOT_PORT=8080
EXPOSE 8080

# /healthz answers 200 once the app is up and its database answers; no curl in the slim image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('CSBOT_PORT', '8080')}/healthz\", timeout=4)"]

# SIGTERM (docker stop) lets csbot finish the requests, outbox pass and reminder tick in flight.
STOPSIGNAL SIGTERM
CMD ["csbot", "serve"]
