// A proxyless gRPC xDS client on Node's @grpc/grpc-js-xds, for gitxds's
// end-to-end tests (package testenv/grpcjs starts it): a second xDS client
// implementation beside gRPC-Go.
//
// The xDS bootstrap comes from GRPC_XDS_BOOTSTRAP (a file) or
// GRPC_XDS_BOOTSTRAP_CONFIG (its content), as for any grpc-js-xds program.
// Commands are JSON lines on stdin, one call each:
//
//   {"id": 1, "target": "echo.example.com", "metadata": {"x-canary": "true"}, "timeoutMs": 5000}
//
// calls grpc.testing.TestService/UnaryCall on xds:///<target> (with
// fill_server_id), and each answer is one JSON line on stdout:
//
//   {"id": 1, "ok": true, "serverId": "A", "hostname": "..."}
//   {"id": 1, "ok": false, "code": 14, "details": "..."}
//
// {"id": 2, "connect": "echo.example.com"} makes the channel to that target
// leave idle (its xDS watches start) without a call: answered {"id": 2, "ok": true}.
// The program prints {"ready": true} once it reads commands, and ends when
// stdin closes.
'use strict';

const grpc = require('@grpc/grpc-js');
const grpcXds = require('@grpc/grpc-js-xds');
const readline = require('readline');

grpcXds.register();

// The two messages of grpc.testing, encoded by hand (no .proto to load):
// SimpleRequest.fill_server_id is field 9 (bool); SimpleResponse.server_id
// is field 4 and hostname field 6 (strings).
const simpleRequest = Buffer.from([9 << 3, 1]);

function decodeResponse(buf) {
  const out = {};
  let i = 0;
  const varint = () => {
    let v = 0, shift = 0, b;
    do {
      b = buf[i++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
    } while (b & 0x80);
    return v;
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) {
      varint();
    } else if (wire === 2) {
      const n = varint();
      const bytes = buf.subarray(i, i + n);
      i += n;
      if (field === 4) out.serverId = bytes.toString('utf8');
      if (field === 6) out.hostname = bytes.toString('utf8');
    } else if (wire === 5) {
      i += 4;
    } else if (wire === 1) {
      i += 8;
    } else {
      throw new Error('unsupported wire type ' + wire);
    }
  }
  return out;
}

const method = {
  path: '/grpc.testing.TestService/UnaryCall',
  requestStream: false,
  responseStream: false,
  requestSerialize: (b) => b,
  requestDeserialize: (b) => b,
  responseSerialize: (b) => b,
  responseDeserialize: decodeResponse,
};

const clients = new Map(); // target -> grpc.Client

function client(target) {
  let c = clients.get(target);
  if (!c) {
    c = new grpc.Client('xds:///' + target, grpc.credentials.createInsecure());
    clients.set(target, c);
  }
  return c;
}

function reply(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function handle(cmd) {
  if (cmd.connect) {
    client(cmd.connect).getChannel().getConnectivityState(true);
    reply({ id: cmd.id, ok: true });
    return;
  }
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(cmd.metadata || {})) md.add(k, v);
  const deadline = new Date(Date.now() + (cmd.timeoutMs || 5000));
  client(cmd.target).makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize,
    simpleRequest, md, { deadline }, (err, resp) => {
      if (err) {
        reply({ id: cmd.id, ok: false, code: err.code, details: err.details || String(err.message) });
      } else {
        reply({ id: cmd.id, ok: true, serverId: resp.serverId || '', hostname: resp.hostname || '' });
      }
    });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch (e) {
    reply({ error: 'bad command: ' + e.message });
    return;
  }
  try {
    handle(cmd);
  } catch (e) {
    reply({ id: cmd.id, ok: false, code: 2, details: 'client.js: ' + e.message });
  }
});
rl.on('close', () => {
  for (const c of clients.values()) c.close();
  process.exit(0);
});
reply({ ready: true });
