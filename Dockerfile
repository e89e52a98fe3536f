# tokenmux: multi-stage image. Build a wheel and its dependencies in one stage, install
# them into a clean slim image in the next; run as an unprivileged user with a healthcheck.
#
#   docker build -t tokenmux .
#   docker run -p 8080:8080 -e OPENAI_API_KEY=... tokenmux
#
# No image is built in this repository's CI; see deploy/README.md.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
COPY pyproject.toml README.md* ./
COPY server ./server
COPY tokenmux ./tokenmux
# Wheels for tokenmux and every runtime dependency (plus the providers and uvloop extras).
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[providers,uvloop]"

FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TOKENMUX_CONFIG=/etc/tokenmux/config.yaml
RUN groupadd --system tokenmux \
    && useradd --system --gid tokenmux --no-create-home --shell /usr/sbin/nologin tokenmux
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels "tokenmux[providers,uvloop]" \
    && rm -rf /wheels
COPY config.yaml /etc/tokenmux/config.yaml
USER tokenmux
EXPOSE 8080
# Liveness from inside the container: /healthz answers 200 while serving, 503 while
# shutting down. Python is already there, so no curl is added to the image.
HEALTHCHECK --interval=15s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
# Listen on every interface inside the container (config.yaml's default is loopback).
CMD ["tokenmux", "serve", "--host", "0.0.0.0", "--port", "8080"]
