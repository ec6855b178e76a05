# workerd configuration: runs the netisle Worker and its Durable Objects
# locally, as Cloudflare would (see README.md "Cloudflare Workers").
#
#   npm run start:workerd          # builds dist/worker.js, serves http://127.0.0.1:8787
#   node_modules/.bin/workerd serve examples/cloudflare/workerd.capnp \
#     --socket-addr http=127.0.0.1:9000     # another address
#
# NETISLE_ADMIN_TOKEN, NETISLE_IDLE_TIMEOUT_MS and NETISLE_LOG are read from
# the environment of the workerd process. Durable Object storage (each
# session's identity only) goes to the directory of the "storage" service:
# `--directory-path storage=/some/dir` moves it (the scripts and tests do).
# `inMemory` storage would not do: this workerd drops an object's in-memory
# storage when it evicts the object, so an evicted session could not come back.

using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [
    (name = "netisle", worker = .netisleWorker),
    (name = "storage", disk = (path = "dist/storage", writable = true)),
  ],
  sockets = [
    (name = "http", address = "127.0.0.1:8787", http = (), service = "netisle"),
  ],
);

const netisleWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "dist/worker.js"),
  ],
  compatibilityDate = "2026-11-17",
  bindings = [
    (name = "SESSIONS", durableObjectNamespace = "NetisleSession"),
    (name = "NETISLE_ADMIN_TOKEN", fromEnvironment = "NETISLE_ADMIN_TOKEN"),
    (name = "NETISLE_IDLE_TIMEOUT_MS", fromEnvironment = "NETISLE_IDLE_TIMEOUT_MS"),
    (name = "NETISLE_LOG", fromEnvironment = "NETISLE_LOG"),
    (name = "NETISLE_EGRESS", fromEnvironment = "NETISLE_EGRESS"),
    (name = "NETISLE_EGRESS_ALLOW", fromEnvironment = "NETISLE_EGRESS_ALLOW"),
    (name = "NETISLE_EGRESS_DENY", fromEnvironment = "NETISLE_EGRESS_DENY"),
    (name = "NETISLE_DNS_UPSTREAM", fromEnvironment = "NETISLE_DNS_UPSTREAM"),
    (name = "NETISLE_SERVER_ADDRESSES", fromEnvironment = "NETISLE_SERVER_ADDRESSES"),
  ],
  durableObjectNamespaces = [
    (className = "NetisleSession", uniqueKey = "netisle-session-v1"),
  ],
  # SQLite files, one per object, under the "storage" directory.
  durableObjectStorage = (localDisk = "storage"),
);
