# Stand-in for node:22-alpine, built by scripts/standin-images.sh only where Docker Hub is unreachable.
# It is Debian (glibc, apt), not Alpine: it exists so tests can build and run the kit's image, and it
# must never be referenced by the production Dockerfile.
#
# Build context (prepared by the script): node.tgz, npm.tgz, corepack.tgz fetched on the host with
# `npm pack`, and the host's CA bundle. Fetching on the host keeps the build free of network access.

ARG BASE=atbb-standin/debian:bookworm

# Unpacking happens in a throwaway stage so the tarballs never land in a layer of the final image.
FROM ${BASE} AS unpack
COPY node.tgz npm.tgz corepack.tgz ca-certificates.crt /tmp/pkgs/
# The node tarball also carries package.json/README at its root; only bin/include/share belong in
# /usr/local (include/ is what node-gyp needs for native addons, as in the official image).
RUN set -eu; \
    out=/out/usr/local; \
    mkdir -p "$out/bin" "$out/lib/node_modules/npm" "$out/lib/node_modules/corepack"; \
    tar -xzf /tmp/pkgs/node.tgz --no-same-owner --strip-components=1 -C "$out" \
        package/bin package/include package/share; \
    tar -xzf /tmp/pkgs/npm.tgz --no-same-owner --strip-components=1 -C "$out/lib/node_modules/npm"; \
    tar -xzf /tmp/pkgs/corepack.tgz --no-same-owner --strip-components=1 \
        -C "$out/lib/node_modules/corepack"; \
    chmod 0755 "$out/bin/node"; \
    ln -s ../lib/node_modules/npm/bin/npm-cli.js "$out/bin/npm"; \
    ln -s ../lib/node_modules/npm/bin/npx-cli.js "$out/bin/npx"; \
    ln -s ../lib/node_modules/corepack/dist/corepack.js "$out/bin/corepack"; \
    mkdir -p "$out/share/ca-certificates/atbb-host"; \
    awk -v dir="$out/share/ca-certificates/atbb-host" \
        '/BEGIN CERTIFICATE/ { n++; f = sprintf("%s/host-%03d.crt", dir, n) } f { print > f } \
         /END CERTIFICATE/ { close(f); f = "" }' /tmp/pkgs/ca-certificates.crt

FROM ${BASE}
ARG NODE_VERSION=22
# TLS to the npm registry goes through a proxy whose CA exists only in the host bundle; without it
# npm, pnpm and corepack fail with "self-signed certificate in certificate chain".
# The same certificates also sit one per file in /usr/local/share/ca-certificates (part of the
# /usr/local copy below): a child image that installs the ca-certificates package regenerates the bundle
# from those sources, and would otherwise lose the proxy CA.
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The registry reachable here serves package metadata without `dist.signatures`, and corepack then
# crashes verifying pnpm ("Cannot read properties of undefined (reading 'some')"); 0 skips that check.
ENV NODE_VERSION=${NODE_VERSION} \
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    COREPACK_INTEGRITY_KEYS=0
COPY --from=unpack /out/usr/local/ /usr/local/
# The official images ship a `node` user with uid/gid 1000; Dockerfiles written for them rely on it.
RUN set -eu; \
    groupadd --gid 1000 node; \
    useradd --uid 1000 --gid node --shell /bin/bash --create-home node; \
    node --version; npm --version; npx --version; corepack --version
CMD ["node"]
