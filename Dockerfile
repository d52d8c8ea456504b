# syntax=docker/dockerfile:1
# The single Whale image: every service runs from it, chosen by its command,
#   whale run event-center | dedupe | indexer | rule-engine | executor --pool NAME | adapters | dispatcher
# and `whale topics ensure` for the topic-initialisation Job. Runs as a non-root user with a
# read-only root filesystem: everything it writes goes to /tmp (mount a writable volume there;
# the Helm chart mounts an emptyDir).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY whale ./whale
COPY services ./services
# whale/event_schemas and whale/scenarios link here; the wheel carries copies (package data).
COPY schemas ./schemas
COPY examples/scenarios ./examples/scenarios
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HOME=/tmp \
    WHALE_CACHE_DIR=/tmp/whale-cache \
    WHALE_LOG_FORMAT=json
RUN groupadd --system --gid 10001 whale \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin whale
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
# The JSON Schemas of Whale's own event types (the chart points WHALE_EVENT_CENTER_SCHEMAS_DIR here).
COPY schemas /app/schemas
# Relative paths a library writes to (a Faust data directory, say) land in the writable /tmp.
WORKDIR /tmp
USER 10001:10001
VOLUME ["/tmp"]
EXPOSE 8080 8081
ENTRYPOINT ["whale"]
CMD ["run", "--list"]
