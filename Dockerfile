# syntax=docker/dockerfile:1
# Node.js 26, the current LTS line, in both stages (docs/decisions/0025-node-lines.md).
# Build: compile TypeScript and bundle the server (dist/server.mjs) with the dev dependencies.
FROM node:26-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Fixes to dependencies, applied by npm's postinstall (see patches/README.md).
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY scripts ./scripts
RUN npm run build

# Run: production dependencies, compiled code and migrations only, as a non-root user.
FROM node:26-bookworm-slim AS runtime
ENV NODE_ENV=production PORT=3000 HOST=0.0.0.0 DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY drizzle ./drizzle
COPY templates ./templates
COPY public ./public
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+'/health/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# V8 heap flags as `npm start` sets them (see docs/decisions/0013-v8-heap-flags.md).
CMD ["node", "--max-semi-space-size=8", "--initial-old-space-size=32", "--no-allocation-site-pretenuring", "--heap-growing-percent=100", "dist/server.mjs"]
