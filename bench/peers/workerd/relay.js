// A room of the relay kind as a Durable Object: every message goes to every
// other WebSocket of the room.  The room accepts its sockets with the
// hibernation API, so workerd may evict the object while they stay open
// and construct it again when a message arrives.

// Constructions of Room objects since start, shown by GET /stats: the
// benchmark reads it to learn whether rooms were evicted, since a hibernated
// object leaves no other trace.  Module state is per isolate, and the
// worker and its Durable Objects share one isolate here.
let constructed = 0;

export class Room {
  constructor(state) {
    this.state = state;
    constructed++;
  }

  async fetch(request) {
    if (request.headers.get("Upgrade") !== "websocket") {
      return new Response("expected a WebSocket upgrade\n", { status: 426 });
    }
    const [client, server] = Object.values(new WebSocketPair());
    this.state.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  webSocketMessage(sender, message) {
    for (const ws of this.state.getWebSockets()) {
      if (ws !== sender) {
        ws.send(message);
      }
    }
  }

  webSocketClose(ws, code) {
    // 1005 and 1006 are reserved: they may not be sent in a close frame.
    ws.close(code === 1005 || code === 1006 ? 1000 : code);
  }

  webSocketError() {}
}

export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (path === "/stats") {
      return Response.json({ constructed });
    }
    const name = path.startsWith("/relay/") ? path.slice(7) : "";
    if (name === "") {
      return new Response("no such route\n", { status: 404 });
    }
    return env.ROOMS.get(env.ROOMS.idFromName(name)).fetch(request);
  },
};
