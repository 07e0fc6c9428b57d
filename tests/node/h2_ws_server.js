// An RFC 8441 WebSocket echo server on Node's own http2 module, for tests/test_http2_node.py.
//
// Node's http2 speaks HTTP/2 and the extended CONNECT (settings.enableConnectProtocol); the
// WebSocket frames on each stream are read and echoed here, in a few lines that share nothing
// with trio_ws, so both layers of the client meet an independent peer. Text, binary and
// continuation frames are echoed as they came (FIN and opcode kept, unmasked), a ping is
// answered with a pong, a close frame is echoed and the stream ended.
//
// Usage: node h2_ws_server.js [CERT_PEM]  (a PEM with the key and the chain: TLS, ALPN h2;
// without it, cleartext h2c). Prints {"event": "ready", "port": N} once listening on
// 127.0.0.1.
"use strict";
const fs = require("fs");
const http2 = require("http2");

const settings = { enableConnectProtocol: true };
const certFile = process.argv[2];
const server = certFile
  ? http2.createSecureServer({
      key: fs.readFileSync(certFile),
      cert: fs.readFileSync(certFile),
      settings,
    })
  : http2.createServer({ settings });

function frame(first, payload) {
  const n = payload.length;
  let head;
  if (n < 126) {
    head = Buffer.from([first, n]);
  } else if (n < 65536) {
    head = Buffer.alloc(4);
    head[0] = first;
    head[1] = 126;
    head.writeUInt16BE(n, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = first;
    head[1] = 127;
    head.writeBigUInt64BE(BigInt(n), 2);
  }
  return Buffer.concat([head, payload]);
}

server.on("stream", (stream, headers) => {
  stream.on("error", () => {});
  if (headers[":method"] !== "CONNECT" || headers[":protocol"] !== "websocket") {
    stream.respond({ ":status": 400 });
    stream.end("not a WebSocket");
    return;
  }
  if (headers[":path"] === "/reject") {
    stream.respond({ ":status": 403, "content-type": "text/plain" });
    stream.end("no entry");
    return;
  }
  const response = { ":status": 200 };
  const offered = headers["sec-websocket-protocol"];
  if (offered) response["sec-websocket-protocol"] = offered.split(",")[0].trim();
  stream.respond(response);
  let buffer = Buffer.alloc(0);
  stream.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (buffer.length < 2) return;
      let length = buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) return;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) return;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      const masked = (buffer[1] & 0x80) !== 0;
      const key = offset;
      if (masked) offset += 4;
      if (buffer.length < offset + length) return;
      const payload = Buffer.from(buffer.subarray(offset, offset + length));
      if (masked) for (let i = 0; i < length; i++) payload[i] ^= buffer[key + (i % 4)];
      const first = buffer[0];
      buffer = buffer.subarray(offset + length);
      const opcode = first & 0x0f;
      if (opcode === 0x9) {
        stream.write(frame(0x8a, payload));
      } else if (opcode === 0xa) {
        // a pong: nothing to answer
      } else if (opcode === 0x8) {
        stream.end(frame(0x88, payload.subarray(0, 2)));
        return;
      } else {
        stream.write(frame(first, payload));
      }
    }
  });
});

server.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ event: "ready", port: server.address().port }) + "\n");
});
