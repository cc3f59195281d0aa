# credbroker's container image. Two stages: the build stage compiles the TypeScript and the native
# SQLite module with the full toolchain; the final stage holds only the built server, its
# production dependencies and the RDS CA bundle, and runs as a non-root user on a read-only root
# filesystem. Details, volumes and the smoke test: docs/deploying.md#the-container-image.
#
#   podman build --format docker -t credbroker .      (or docker build -t credbroker .)
#
# Pin both images by digest for production builds, e.g.
#   --build-arg BASE_IMAGE=node:22-bookworm-slim@sha256:<digest> --build-arg BUILD_IMAGE=node:22-bookworm@sha256:<digest>
# The build stage must have node 22, npm and a C++ toolchain (better-sqlite3 compiles when its
# prebuilt binary cannot be downloaded); the final stage's base only needs /usr/local/bin/node.
ARG BASE_IMAGE=node:22-bookworm-slim
ARG BUILD_IMAGE=node:22-bookworm

FROM ${BUILD_IMAGE} AS build
WORKDIR /build
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs scripts/build.mjs
COPY server/ server/
# The security-team console's script and stylesheet (built into dist/console/ by build.mjs).
COPY console/ console/
COPY deploy/container/ deploy/container/
# Build, write the RDS CA bundle (from a dev dependency), then drop every dev dependency and the
# native module's sources and intermediates. The empty directories become the writable volumes.
RUN node scripts/build.mjs --force \
 && mkdir -p out/certs out/data out/audit \
 && node deploy/container/rds-ca-bundle.mjs > out/certs/rds-ca-bundle.pem \
 && npm prune --omit=dev \
 && find node_modules -mindepth 1 -maxdepth 1 -type d -empty -delete \
 && cd node_modules/better-sqlite3 \
 && rm -rf deps src build/Release/obj build/Release/obj.target build/Release/.deps build/Release/test_extension.node build/deps

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="credbroker" \
      org.opencontainers.image.description="Short-lived AWS credentials for CI/CD jobs: OIDC token in, per-job STS credentials out" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV NODE_ENV=production
WORKDIR /opt/credbroker
# Owned by root, so the broker cannot change its own code even where the root FS is writable.
COPY --from=build /build/package.json ./package.json
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
COPY --from=build /build/out/certs ./certs
COPY deploy/container/healthcheck.mjs ./healthcheck.mjs
COPY deploy/container/credbroker /usr/local/bin/credbroker
# The only places the broker writes: the SQLite store and the audit file (store.sqlite_path,
# audit.path). Everything else can be mounted read-only (--read-only, readOnlyRootFilesystem).
COPY --from=build --chown=10001:10001 /build/out/data /var/lib/credbroker
COPY --from=build --chown=10001:10001 /build/out/audit /var/log/credbroker
VOLUME ["/var/lib/credbroker", "/var/log/credbroker"]
# A numeric user, so that Kubernetes' runAsNonRoot can check it without a passwd entry.
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["node", "/opt/credbroker/healthcheck.mjs"]
# SIGTERM: stop accepting, answer the exchanges in flight, exit 0 (at most
# server.request_timeout_ms + 2 s later; give the orchestrator's stop timeout more than that).
STOPSIGNAL SIGTERM
ENTRYPOINT ["credbroker"]
CMD ["serve", "--config", "/etc/credbroker/config.yaml"]
