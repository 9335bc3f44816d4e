# The Agora GitHub App server (`agora app`). Build: docker build -t agora-app .
# Run:   docker run -p 3000:3000 -e APP_ID=… -e PRIVATE_KEY="$(cat app.pem)" -e WEBHOOK_SECRET=… \
#          -e AGORA_CONFIG=/config/agora.config.mjs -v "$PWD/config:/config:ro" agora-app
# The cache volume (/var/cache/agora: repository mirrors, workspaces) is disposable.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm ci --ignore-scripts && npx tsc -p tsconfig.build.json

FROM node:20-bookworm-slim
# git: the mirror's fetch/push and the workspaces use the git CLI.
RUN apt-get update && apt-get install -y --no-install-recommends git ca-certificates tini \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY app.yml ./
ENV NODE_ENV=production \
    PORT=3000 \
    HOST=0.0.0.0 \
    AGORA_CACHE_DIR=/var/cache/agora
RUN mkdir -p /var/cache/agora && chown node:node /var/cache/agora
VOLUME /var/cache/agora
USER node
EXPOSE 3000
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "dist/cli/main.js", "app"]
