// Node's `ws` server, an independent peer for trio_ws's tests (tests/servers.py starts it).
//
//   node ws_server.js [--server-max-window-bits N]
//
// Listens on 127.0.0.1 (a free port), prints {"event": "ready", "port": N} and echoes every
// message; permessage-deflate is accepted, with serverMaxWindowBits N if given (8 is what
// RFC 7692 allows and zlib cannot inflate with, so a client must use 9).
"use strict";
const { WebSocketServer } = require("ws");

const args = process.argv.slice(2);
const bitsAt = args.indexOf("--server-max-window-bits");
const perMessageDeflate = { threshold: 0 };
if (bitsAt >= 0) {
  perMessageDeflate.serverMaxWindowBits = Number(args[bitsAt + 1]);
}
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate });
wss.on("listening", () => {
  console.log(JSON.stringify({ event: "ready", port: wss.address().port }));
});
wss.on("connection", (ws, request) => {
  const extensions = request.headers["sec-websocket-extensions"] || "";
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  ws.send(JSON.stringify({ offer: extensions }));
});
