// A minimal broadcast chat server as the classic Deno WebSocket chat tutorial
// writes it: a Map of sockets, the whole user list to everyone on every join
// and leave, each message stringified once and sent to every socket.
// Banter's benchmark baseline; do not optimise it.
//
//   deno run --allow-net deno_chat.ts 127.0.0.1:3000

const [hostname, port] = (Deno.args[0] ?? "127.0.0.1:3000").split(":");
const connectedClients = new Map<string, WebSocket>();

function broadcast(message: string) {
  for (const client of connectedClients.values()) {
    if (client.readyState === WebSocket.OPEN) client.send(message);
  }
}

function broadcastUsernames() {
  const usernames = [...connectedClients.keys()].sort();
  broadcast(JSON.stringify({ event: "update-users", usernames }));
}

Deno.serve({ hostname, port: Number(port), onListen: () => console.log(`deno chat on ${hostname}:${port}`) }, (req) => {
  const url = new URL(req.url);
  if (url.pathname !== "/start_web_socket") return new Response("not found", { status: 404 });
  if (req.headers.get("upgrade") !== "websocket") return new Response("WebSocket only\n", { status: 426 });
  const { socket, response } = Deno.upgradeWebSocket(req);
  const username = url.searchParams.get("username") ?? "";
  socket.onopen = () => {
    if (connectedClients.has(username)) {
      socket.close(1008, `Username ${username} is already taken`);
      return;
    }
    connectedClients.set(username, socket);
    broadcastUsernames();
  };
  socket.onclose = () => {
    if (connectedClients.get(username) === socket) {
      connectedClients.delete(username);
      broadcastUsernames();
    }
  };
  socket.onmessage = (m) => {
    const data = JSON.parse(m.data);
    if (data.event === "send-message") {
      broadcast(JSON.stringify({ event: "send-message", username, message: data.message }));
    }
  };
  return response;
});
