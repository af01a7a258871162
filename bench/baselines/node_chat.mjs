// A minimal broadcast chat server with Node and `ws`, written the way the
// tutorials write it: a Map of sockets, the whole user list to everyone on
// every join and leave, each message stringified once and sent to every
// socket. Banter's benchmark baseline; do not optimise it.
//
//   node node_chat.mjs 127.0.0.1:3000

import { createServer } from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';

const [host, port] = (process.argv[2] ?? '127.0.0.1:3000').split(':');
const connectedClients = new Map();

function broadcast(message) {
  for (const client of connectedClients.values()) {
    if (client.readyState === WebSocket.OPEN) client.send(message);
  }
}

function broadcastUsernames() {
  const usernames = [...connectedClients.keys()].sort();
  broadcast(JSON.stringify({ event: 'update-users', usernames }));
}

const server = createServer((req, res) => {
  res.writeHead(req.url.startsWith('/start_web_socket') ? 426 : 404);
  res.end('WebSocket only\n');
});
const wss = new WebSocketServer({ server, path: '/start_web_socket' });

wss.on('connection', (socket, req) => {
  const username = new URL(req.url, 'http://x').searchParams.get('username') ?? '';
  if (connectedClients.has(username)) {
    socket.close(1008, `Username ${username} is already taken`);
    return;
  }
  connectedClients.set(username, socket);
  broadcastUsernames();
  socket.on('close', () => {
    if (connectedClients.get(username) === socket) {
      connectedClients.delete(username);
      broadcastUsernames();
    }
  });
  socket.on('message', (data) => {
    const event = JSON.parse(data);
    if (event.event === 'send-message') {
      broadcast(JSON.stringify({ event: 'send-message', username, message: event.message }));
    }
  });
});

server.listen(Number(port), host, () => console.log(`node chat on ${host}:${port}`));
