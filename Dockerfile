# The Agora GitHub App server (`agora app`). Nothing is compiled or installed from npm inside the build:
# the context is prepared on the host, then built as it is.
#
#   npm run image:context -- --out .tmp/image        # dist/, production node_modules, this file
#   docker build -t agora-app .tmp/image             # or: podman build -t agora-app .tmp/image
#   docker run --init -p 3000:3000 -e APP_ID=… -e PRIVATE_KEY="$(cat app.pem)" -e WEBHOOK_SECRET=… \
#     -e AGORA_CONFIG=/config/agora.config.mjs -v "$PWD/config:/config:ro" agora-app
#
# Build arguments:
#   BASE  an image with node 20.18 or later on PATH and /bin/sh; default node:24-bookworm-slim.
#   GIT   where the git CLI comes from. The app cannot run without it: every event fetches into the
#         repository's mirror and every run pushes its refs with `git push --atomic --force-with-lease`,
#         the remote compare-and-swap the run state depends on, which isomorphic-git's push cannot express
#         (one ref per push, no expected value). Without git the app refuses to start (`git-cli-missing`).
#           apt   (default) install it with apt-get on a Debian-based BASE (needs Debian's mirrors);
#           base  BASE already has git;
#           host  copy the git that `npm run image:context -- --host-git` took from the build host (only
#                 for a BASE made of that host's files, such as the tests' localhost/agora-node:test).
#
# The command is `agora app`; any other `agora` command can be given instead (`docker run … agora-app verify …`).
# PID 1 is node itself (exec form, no tini: the local test base has none). `agora app` handles SIGTERM and
# SIGINT (stop taking webhooks, record running items as interrupted, exit 0), so `docker stop` is clean.
# Node does not reap orphaned grandchildren (a local-target worker's leftovers): run with `--init`, the
# engine's own init, where such workers run in the app's container.
#
# The user is numeric (10001:10001, no passwd entry needed), so `runAsNonRoot` policies can check it.
# It writes the repository mirrors to the cache volume (/var/cache/agora, disposable) and the workers'
# workspaces under /tmp (TMPDIR, or AGORA_WORK_DIR), as `agora-10001/`.

ARG BASE=node:24-bookworm-slim
ARG GIT=apt

FROM ${BASE} AS git-apt
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/*

FROM ${BASE} AS git-base
# One instruction: Podman 4.3's build leaves the working container of an empty stage behind.
LABEL org.agora.git=base

FROM ${BASE} AS git-host
COPY git-root/ /

FROM git-${GIT}
WORKDIR /app
COPY app/ ./
COPY --chown=10001:10001 cache/ /var/cache/agora/
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    AGORA_CACHE_DIR=/var/cache/agora \
    HOME=/var/cache/agora
VOLUME /var/cache/agora
USER 10001:10001
EXPOSE 3000
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["app"]
