# syntax=docker/dockerfile:1
# The conuredb image: conured (entrypoint) and conurectl (on PATH), used by charts/conuredb.
# The same image serves charts/fluxiondb and charts/conure-platform, which set their command to
# node /app/dist/src/cli/fluxiond.js and node /app/dist/src/cli/conure-platform.js.
#   docker build -t conure/conuredb:0.1.0 .
# Two stages: the build stage compiles TypeScript and prunes dev dependencies; the runtime
# stage holds only node, the compiled src/ tree and production node_modules, and runs as the
# unprivileged `node` user (uid/gid 1000, matching the chart's security defaults).
ARG NODE_IMAGE=node:20-slim
ARG GO_IMAGE=golang:1.24
# The same helm scripts/setup.sh pins: the platform's kubernetes driver renders the charts with it.
ARG HELM_VERSION=v3.16.4

FROM ${GO_IMAGE} AS helm
ARG HELM_VERSION
RUN CGO_ENABLED=0 GOBIN=/out go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION}

FROM ${NODE_IMAGE} AS build
WORKDIR /src
# Dependencies first, so source edits reuse this layer. lmdb ships prebuilt glibc binaries.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json --outDir dist \
 && npm prune --omit=dev --no-audit --no-fund --loglevel=error

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    CONURE_DATA_DIR=/var/lib/conure
WORKDIR /app
# package.json carries "type": "module", which the compiled ESM files need.
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# conure-platform with PLATFORM_DRIVER=kubernetes: `helm template` on these charts.
COPY --from=helm /out/helm /usr/local/bin/helm
COPY charts/conuredb ./charts/conuredb
COPY charts/fluxiondb ./charts/fluxiondb
RUN printf '#!/bin/sh\nexec node /app/dist/src/cli/conurectl.js "$@"\n' > /usr/local/bin/conurectl \
 && printf '#!/bin/sh\nexec node /app/dist/src/cli/conured.js "$@"\n' > /usr/local/bin/conured \
 && chmod 0755 /usr/local/bin/conurectl /usr/local/bin/conured \
 && mkdir -p /var/lib/conure \
 && chown node:node /var/lib/conure
USER 1000:1000
VOLUME ["/var/lib/conure"]
# 8081 HTTP API (/health, /ready, /metrics, seed REST), 7001 raft peers, 2379 etcd v3 gRPC.
EXPOSE 8081 7001 2379
ENTRYPOINT ["node", "/app/dist/src/cli/conured.js"]
