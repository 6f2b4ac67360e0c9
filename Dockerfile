# One image for every xdp-ids service; docker-compose.yml picks the command and the privileges.
FROM node:20-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      clang llvm make g++ python3 pkg-config libbpf-dev libelf-dev zlib1g-dev bpftool \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/xdp-ids
COPY package.json package-lock.json ./
RUN npm install --no-save
COPY . .
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libbpf1 libelf1 zlib1g iproute2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/xdp-ids
COPY --from=build /opt/xdp-ids/node_modules ./node_modules
COPY --from=build /opt/xdp-ids/dist ./dist
COPY --from=build /opt/xdp-ids/bpf/xdp_ids.bpf.o ./bpf/
COPY --from=build /opt/xdp-ids/native/build/Release ./native/build/Release
COPY rules ./rules
COPY package.json ./
USER node
ENTRYPOINT ["node", "dist/bin/xdp-ids.js"]
