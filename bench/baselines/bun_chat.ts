// The Deno tutorial's chat (deno_chat.ts) written the way Bun's docs teach
// it: Bun.serve with a websocket handler, every socket subscribed to one
// topic, and server.publish for the broadcasts, so uWebSockets inside Bun
// does the fan-out. Same behaviour as the other baselines: the whole user
// list to everyone on every join and leave, each message stringified once.
// Banter's benchmark baseline; do not optimise it.
//
// server.publish, not ws.publish: the tutorial sends a message to everyone,
// its sender included (banter-bench's senders wait for their own messages to
// come back), and ws.publish skips the socket it is called on.
//
//   bun run bun_chat.ts 127.0.0.1:3000

const [hostname, port] = (Bun.argv[2] ?? "127.0.0.1:3000").split(":");
const connectedClients = new Map<string, object>();

function broadcastUsernames() {
  const usernames = [...connectedClients.keys()].sort();
  server.publish("chat", JSON.stringify({ event: "update-users", usernames }));
}

const server = Bun.serve<{ username: string }>({
  hostname,
  port: Number(port),
  fetch(req, server) {
    const url = new URL(req.url);
    if (url.pathname !== "/start_web_socket") return new Response("not found", { status: 404 });
    const username = url.searchParams.get("username") ?? "";
    if (server.upgrade(req, { data: { username } })) return undefined;
    return new Response("WebSocket only\n", { status: 426 });
  },
  websocket: {
    open(ws) {
      const { username } = ws.data;
      if (connectedClients.has(username)) {
        ws.close(1008, `Username ${username} is already taken`);
        return;
      }
      connectedClients.set(username, ws);
      ws.subscribe("chat");
      broadcastUsernames();
    },
    close(ws) {
      const { username } = ws.data;
      if (connectedClients.get(username) === ws) {
        connectedClients.delete(username);
        broadcastUsernames();
      }
    },
    message(ws, message) {
      const data = JSON.parse(String(message));
      if (data.event === "send-message") {
        server.publish("chat", JSON.stringify({ event: "send-message", username: ws.data.username, message: data.message }));
      }
    },
  },
});
console.log(`bun chat on ${hostname}:${port}`);
