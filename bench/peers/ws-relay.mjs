// A relay written the way one would with Node's ws: rooms by URL path,
// /relay/NAME, and every message goes to every other socket of the room.
// Loopback only.  Prints "listening on 127.0.0.1:PORT" once ready.
//
//   node ws-relay.mjs [PORT]      (0, the default: any free port)
import http from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? 0);
const rooms = new Map(); // name -> Set of sockets

const server = http.createServer((req, res) => {
  res.writeHead(426, { "Content-Type": "text/plain" });
  res.end("expected a WebSocket upgrade\n");
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

server.on("upgrade", (req, socket, head) => {
  const match = /^\/relay\/([^/?]+)$/.exec(req.url);
  if (match === null) {
    socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    const name = match[1];
    let room = rooms.get(name);
    if (room === undefined) {
      room = new Set();
      rooms.set(name, room);
    }
    room.add(ws);
    ws.on("message", (data, isBinary) => {
      for (const other of room) {
        if (other !== ws) {
          other.send(data, { binary: isBinary });
        }
      }
    });
    ws.on("close", () => {
      room.delete(ws);
      if (room.size === 0) {
        rooms.delete(name);
      }
    });
    ws.on("error", () => {});
  });
});

server.listen(port, "127.0.0.1", () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
process.on("SIGTERM", () => process.exit(0));
