// A relay written the way one would with Socket.IO 4 and its Redis
// adapter, ready to run as several nodes behind a load balancer: a client
// emits "join" with a room name (acknowledged once joined), and every
// "msg" it emits goes to every other socket of that room, through Redis.
// WebSocket transport only, so no sticky sessions are needed for the
// benchmark.  Loopback only.  Prints "listening on 127.0.0.1:PORT" once
// ready.
//
//   node socketio-relay.mjs PORT REDIS_PORT     (PORT 0: any free port)
import { createServer } from "node:http";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";

const port = Number(process.argv[2] ?? 0);
const redisPort = Number(process.argv[3]);
if (!Number.isInteger(redisPort) || redisPort <= 0) {
  console.error("usage: node socketio-relay.mjs PORT REDIS_PORT");
  process.exit(2);
}

const pub = createClient({ url: `redis://127.0.0.1:${redisPort}` });
const sub = pub.duplicate();
for (const client of [pub, sub]) {
  client.on("error", (err) => {
    console.error(`could not talk to Redis: ${err.message}`);
    process.exit(1);
  });
}
await Promise.all([pub.connect(), sub.connect()]);

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ["websocket"],
  perMessageDeflate: false,
  serveClient: false,
  adapter: createAdapter(pub, sub),
});

io.on("connection", (socket) => {
  let room = null;
  socket.on("join", (name, ack) => {
    if (typeof name !== "string" || name === "" || room !== null) {
      socket.disconnect(true);
      return;
    }
    room = name;
    socket.join(name);
    if (typeof ack === "function") {
      ack();
    }
  });
  socket.on("msg", (payload) => {
    if (room !== null) {
      socket.to(room).emit("msg", payload);
    }
  });
});

httpServer.listen(port, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${httpServer.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
