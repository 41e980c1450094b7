# Wildcat's container image: wildcatd, its plugins and the shipped rules on
# an empty base (scratch), running as a non-root user with its state in the
# /data volume.
#
#   docker build -t wildcat:dev .
#   docker run -p 8080:8080 -v wildcat-data:/data wildcat:dev
#
# `make image` builds the same image without Docker (cmd/wildcat-image): it
# runs this file's `make` step, adds the same files and reads the runtime
# stage's ENV, WORKDIR, USER, EXPOSE, VOLUME, HEALTHCHECK, ENTRYPOINT and
# CMD from here, so keep those in the simple forms below (JSON arrays for
# commands, one line each or continued with \).

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Static binaries (CGO_ENABLED=0, -trimpath, -s -w, tzdata built in) into
# bin/static: wildcatd and bin/static/plugins/{echo,mediaarchive,webhook}.
RUN make build-static VERSION=${VERSION}
# What scratch lacks: an empty /data for the non-root user, a /tmp (the
# plugins' sockets), and CA certificates (HTTPS webhooks, media, MongoDB TLS).
RUN mkdir -p /rootfs/data /rootfs/tmp && chmod 1777 /rootfs/tmp

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /rootfs/tmp /tmp
COPY --from=build --chown=65532:65532 /rootfs/data /data
# /etc/passwd and /etc/group (root and wildcat, 65532), and
# /opt/wildcat/config.yaml: the repository's config.yaml with data_dir /data
# and http.addr 0.0.0.0:8080.
COPY cmd/wildcat-image/rootfs/ /
COPY scripts/ /opt/wildcat/scripts/
COPY --from=build /src/bin/static/ /opt/wildcat/bin/
ENV PATH=/opt/wildcat/bin
WORKDIR /opt/wildcat
USER 65532:65532
EXPOSE 8080/tcp
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=10s --start-period=1m --retries=3 \
  CMD ["/opt/wildcat/bin/wildcatd", "healthcheck"]
ENTRYPOINT ["/opt/wildcat/bin/wildcatd"]
CMD ["run"]
