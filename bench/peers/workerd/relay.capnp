# workerd's configuration for the relay rooms: one worker whose Durable
# Object class Room keeps its storage in memory (the relay stores nothing).
# The listening address is given at start with
# --socket-addr http=127.0.0.1:PORT.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "relay", worker = .relayWorker)],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "relay")],
);

const relayWorker :Workerd.Worker = (
  modules = [(name = "relay.js", esModule = embed "relay.js")],
  compatibilityDate = "2025-01-01",
  durableObjectNamespaces = [(className = "Room", uniqueKey = "torpor-bench-relay-room")],
  durableObjectStorage = (inMemory = void),
  bindings = [(name = "ROOMS", durableObjectNamespace = "Room")],
);
