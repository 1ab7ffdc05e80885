// A device made of Microsoft's Azure IoT device SDK for Node.js (unmodified, from npm),
// driven by the conformance tests (tests/sdk/test_node_sdk.py) over stdin/stdout: one JSON
// request per line in ({"id": n, "op": ..., ...}), one JSON answer per line out
// ({"id": n, "ok": true, ...} or {"id": n, "error": "..."}), and events as they happen
// ({"event": "c2d" | "desired" | "method" | "connect" | "disconnect" | "token", ...}).
//
// The only thing the harness changes is where TCP goes, like curl's --connect-to: the SDK
// dials the host names DPS and the hub are known by, on Azure's ports (8883 for MQTT, 443
// for MQTT over WebSockets), and tls.connect sends those connections to the local cloud's
// ports on 127.0.0.1 (TETHER_CLOUD_PORT, TETHER_CLOUD_WS_PORT), keeping the host name for
// SNI and the certificate check. Trust comes from NODE_EXTRA_CA_CERTS (the cloud's CA).
'use strict';

const fs = require('fs');
const readline = require('readline');
const tls = require('tls');

const { Client, Message, SharedAccessKeyAuthenticationProvider } = require('azure-iot-device');
const HubMqtt = require('azure-iot-device-mqtt').Mqtt;
const HubMqttWs = require('azure-iot-device-mqtt').MqttWs;
const { ProvisioningDeviceClient } = require('azure-iot-provisioning-device');
const DpsMqtt = require('azure-iot-provisioning-device-mqtt').Mqtt;
const DpsMqttWs = require('azure-iot-provisioning-device-mqtt').MqttWs;
const { X509Security } = require('azure-iot-security-x509');
const { SymmetricKeySecurityClient } = require('azure-iot-security-symmetric-key');

const ports = {
  8883: Number(process.env.TETHER_CLOUD_PORT),
  443: Number(process.env.TETHER_CLOUD_WS_PORT),
};
const sockets = []; // {host, port, socket}: what a network blip cuts
const handshakes = []; // {host, port, protocol}: the TLS version of every connection made
const realConnect = tls.connect;
tls.connect = function (...args) {
  if (typeof args[0] === 'object' && ports[args[0].port]) {
    const opts = Object.assign({}, args[0]);
    const host = opts.servername || opts.host;
    const azurePort = opts.port;
    opts.servername = host;
    opts.host = '127.0.0.1';
    opts.port = ports[azurePort];
    const socket = realConnect.call(tls, opts, ...args.slice(1));
    const entry = { host, port: azurePort, socket };
    sockets.push(entry);
    socket.on('secureConnect', () => handshakes.push({ host, port: azurePort,
      protocol: socket.getProtocol() }));
    socket.on('close', () => sockets.splice(sockets.indexOf(entry), 1));
    return socket;
  }
  return realConnect.apply(tls, args);
};

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function pem(path) {
  return fs.readFileSync(path, 'utf8');
}

const clients = {}; // name -> {client, twin, auth}

async function provision(r) {
  const security = r.attestation === 'x509'
    ? new X509Security(r.registrationId, { cert: pem(r.cert), key: pem(r.key) })
    : new SymmetricKeySecurityClient(r.registrationId, r.symmetricKey);
  const transport = r.transport === 'ws' ? new DpsMqttWs() : new DpsMqtt();
  const dps = ProvisioningDeviceClient.create(r.dpsHost, r.idScope, transport, security);
  if (r.payload !== undefined) {
    dps.setProvisioningPayload(r.payload);
  }
  const result = await dps.register();
  return { result };
}

async function connect(r) {
  const Transport = r.transport === 'ws' ? HubMqttWs : HubMqtt;
  let client;
  let auth = null;
  if (r.attestation === 'x509') {
    client = Client.fromConnectionString(`HostName=${r.hub};DeviceId=${r.deviceId};x509=true`,
      Transport);
    await client.setOptions({ cert: pem(r.cert), key: pem(r.key) });
  } else {
    const cs = `HostName=${r.hub};DeviceId=${r.deviceId};SharedAccessKey=${r.symmetricKey}`;
    // tokenValidSeconds/tokenMarginSeconds: the SDK's renewal cadence (default 3600/900 s:
    // a new token, and a new connection, every 45 minutes)
    auth = SharedAccessKeyAuthenticationProvider.fromConnectionString(cs, r.tokenValidSeconds,
      r.tokenMarginSeconds);
    auth.on('newTokenAvailable', () => emit({ event: 'token', name: r.name }));
    client = Client.fromAuthenticationProvider(auth, Transport);
  }
  client.on('connect', () => emit({ event: 'connect', name: r.name }));
  client.on('disconnect', () => emit({ event: 'disconnect', name: r.name }));
  client.on('error', (e) => emit({ event: 'error', name: r.name, message: String(e) }));
  client.on('message', (msg) => {
    const properties = {};
    for (let i = 0; i < msg.properties.count(); i++) {
      const p = msg.properties.getItem(i);
      properties[p.key] = p.value;
    }
    emit({
      event: 'c2d', name: r.name, data: msg.data.toString(), messageId: msg.messageId,
      properties,
    });
    client.complete(msg, (e) => e && emit({ event: 'error', name: r.name, message: String(e) }));
  });
  await client.open();
  const entry = { client, twin: null, auth };
  clients[r.name] = entry;
  for (const method of r.methods || []) {
    client.onDeviceMethod(method, (req, res) => {
      emit({ event: 'method', name: r.name, method: req.methodName, payload: req.payload });
      res.send(200, { echo: req.payload, method: req.methodName }, () => {});
    });
  }
  return {};
}

function entryOf(r) {
  const e = clients[r.name];
  if (!e) {
    throw new Error(`no connection named ${r.name}`);
  }
  return e;
}

async function twin(r) {
  const e = entryOf(r);
  if (!e.twin) {
    e.twin = await e.client.getTwin();
    e.twin.on('properties.desired', (patch) => emit({ event: 'desired', name: r.name, patch }));
  }
  return { desired: e.twin.properties.desired, reported: e.twin.properties.reported };
}

const ops = {
  provision,
  connect,
  twin,
  async refreshTwin(r) {
    const e = entryOf(r);
    await twin(r);
    await new Promise((resolve, reject) => e.twin.get((err) => (err ? reject(err) : resolve())));
    return { desired: e.twin.properties.desired, reported: e.twin.properties.reported };
  },
  async report(r) {
    const e = entryOf(r);
    await twin(r);
    await new Promise((resolve, reject) => e.twin.properties.reported.update(r.patch,
      (err) => (err ? reject(err) : resolve())));
    return {};
  },
  async send(r) {
    const msg = new Message(r.data);
    for (const [k, v] of Object.entries(r.properties || {})) {
      msg.properties.add(k, v);
    }
    if (r.messageId) msg.messageId = r.messageId;
    if (r.contentType) msg.contentType = r.contentType;
    if (r.contentEncoding) msg.contentEncoding = r.contentEncoding;
    await entryOf(r).client.sendEvent(msg);
    return {};
  },
  async blip(r) {
    // A network blip: the TCP connections to the hub are cut under the SDK.
    const cut = sockets.filter((s) => s.host === r.hub);
    cut.forEach((s) => s.socket.destroy());
    return { cut: cut.length };
  },
  async handshakes() {
    return { handshakes };
  },
  async close(r) {
    await entryOf(r).client.close();
    delete clients[r.name];
    return {};
  },
};

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let r;
  try {
    r = JSON.parse(line);
  } catch (e) {
    emit({ error: `not JSON: ${line}` });
    return;
  }
  try {
    const out = await ops[r.op](r);
    emit(Object.assign({ id: r.id, ok: true }, out));
  } catch (e) {
    emit({ id: r.id, error: String(e && (e.message || e)), name: e && e.constructor.name });
  }
});
rl.on('close', () => process.exit(0));
