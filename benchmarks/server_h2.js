// The server of benchmarks/http2.py: one WebSocket echo, reachable two ways, in one Node process.
//
//   node server_h2.js CERT_PEM
//
// * HTTP/2 (RFC 8441) on Node's http2 module with enableConnectProtocol: over TLS (ALPN h2)
//   on port "h2", and cleartext h2c with prior knowledge on port "h2c";
// * HTTP/1.1 upgrade (RFC 6455 §4) on Node's https and http modules: ports "h1s" and "h1".
//
// The WebSocket frames are read and echoed by the same few lines whichever way they came,
// so the two transports differ only in the transport. Prints one JSON line with the ports
// once all four listen on 127.0.0.1. Needs no npm package.
"use strict";
const crypto = require("crypto");
const fs = require("fs");
const http = require("http");
const https = require("https");
const http2 = require("http2");

const pem = fs.readFileSync(process.argv[2]);
const tls = { key: pem, cert: pem };
const settings = { enableConnectProtocol: true, maxConcurrentStreams: 100000 };

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

// Echo the client's frames on `duplex` (an HTTP/2 stream or a socket).
function echo(duplex) {
  let buffer = Buffer.alloc(0);
  duplex.on("error", () => {});
  duplex.on("data", (chunk) => {
    buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
    const out = [];
    for (;;) {
      if (buffer.length < 2) break;
      let length = buffer[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buffer.length < 4) break;
        length = buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (buffer.length < 10) break;
        length = Number(buffer.readBigUInt64BE(2));
        offset = 10;
      }
      const key = offset;
      offset += 4; // a client's frames are masked
      if (buffer.length < offset + length) break;
      const payload = Buffer.from(buffer.subarray(offset, offset + length));
      for (let i = 0; i < length; i++) payload[i] ^= buffer[key + (i % 4)];
      const first = buffer[0];
      buffer = buffer.subarray(offset + length);
      const opcode = first & 0x0f;
      if (opcode === 0x9) {
        out.push(frame(0x8a, payload));
      } else if (opcode === 0x8) {
        if (out.length) duplex.write(Buffer.concat(out));
        duplex.end(frame(0x88, payload.subarray(0, 2)));
        return;
      } else if (opcode !== 0xa) {
        out.push(frame(first, payload));
      }
    }
    if (out.length) duplex.write(out.length === 1 ? out[0] : Buffer.concat(out));
  });
}

function onStream(stream, headers) {
  if (headers[":method"] !== "CONNECT" || headers[":protocol"] !== "websocket") {
    stream.respond({ ":status": 400 });
    stream.end();
    return;
  }
  stream.respond({ ":status": 200 });
  echo(stream);
}

function onUpgrade(request, socket) {
  const key = request.headers["sec-websocket-key"];
  const accept = crypto
    .createHash("sha1")
    .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    .digest("base64");
  socket.setNoDelay(true);
  socket.write(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
  );
  echo(socket);
}

const servers = {
  h2: http2.createSecureServer({ ...tls, settings }),
  h2c: http2.createServer({ settings }),
  h1s: https.createServer(tls),
  h1: http.createServer(),
};
servers.h2.on("stream", onStream);
servers.h2c.on("stream", onStream);
servers.h1s.on("upgrade", onUpgrade);
servers.h1.on("upgrade", onUpgrade);

const ports = {};
let pending = Object.keys(servers).length;
for (const [name, server] of Object.entries(servers)) {
  server.listen(0, "127.0.0.1", () => {
    ports[name] = server.address().port;
    if (--pending === 0) process.stdout.write(JSON.stringify({ event: "ready", ports }) + "\n");
  });
}
