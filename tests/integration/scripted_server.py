"""A scripted DPS + IoT Hub server for the integration tests: TLS (the ssl module, with the
test PKI's localhost certificate) and a small MQTT 3.1.1 peer whose behaviour each test
programs, to play what Azure can do and Mosquitto will not on demand: close right after
CONNACK, after the twin response or after N seconds; answer any request with any status and
topic; never answer PINGREQ; split packets into tiny writes or coalesce several into one;
send messages larger than the device's buffer (and deliver unacknowledged QoS 1 messages again
on every connection, as the hub does). It records every connection and request with its time,
so the tests assert counts and intervals.

One port serves both DPS and the hub: a CONNECT whose user name holds "/registrations/" is a
DPS connection, any other a hub connection. Like IoT Hub, a new connection of a client id
closes the older one."""
import socket
import ssl
import struct
import threading
import time


def _length(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def packet(first, body):
    return bytes([first]) + _length(len(body)) + body


def publish(topic, payload=b"", qos=0, packet_id=0):
    t = topic.encode()
    body = struct.pack(">H", len(t)) + t
    if qos:
        body += struct.pack(">H", packet_id)
    return packet(0x30 | (qos << 1), body + payload)


def most_in_window(times, window):
    """The most of times (seconds) that fall in any window of that many seconds."""
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + window) for i, t in enumerate(times)),
               default=0)


def _rid(topic):
    q = topic.split("?", 1)[1] if "?" in topic else ""
    for part in q.split("&"):
        if part.startswith("$rid="):
            return part[5:]
    return ""


ASSIGNED = ('{"operationId":"op-1","status":"assigned","registrationState":{'
            '"registrationId":"%s","assignedHub":"localhost","deviceId":"%s",'
            '"status":"assigned","substatus":"initialAssignment"}}')


class Program:
    """What the server does; tests set the attributes before or while the device runs."""

    def __init__(self):
        self.connack = 0                 # CONNACK return code of hub connections
        self.close_after_connack = None  # seconds after a hub CONNACK to close, or None
        self.close_after_twin = False    # close a hub connection once the twin is answered
        self.silent_pings = False
        self.split = False               # write every packet a few bytes at a time
        self.coalesce = False            # answers and the packets after them in one write
        # DPS answers in order (the last repeats): (status, query, "assigning"/"assigned"/None)
        self.dps = [(200, "", "assigned")]
        self.twin = [200]                # twin GET statuses in order (the last repeats)
        self.reported = [204]
        self.c2d = []                    # QoS 1 messages to deliver until acknowledged


class Connection:
    def __init__(self, server, sock, record):
        self.server, self.sock, self.record = server, sock, record
        self.lock = threading.Lock()
        self.pending = []  # coalesced packets not yet written

    def write(self, data):
        prog = self.server.program
        with self.lock:
            if prog.coalesce:
                self.pending.append(data)
                return
            self._send(data)

    def flush(self):
        with self.lock:
            if self.pending:
                self._send(b"".join(self.pending))
                self.pending = []

    def _send(self, data):
        if self.server.program.split:
            for i in range(0, len(data), 3):
                self.sock.sendall(data[i:i + 3])
                time.sleep(0.001)
        else:
            self.sock.sendall(data)

    def read_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed by the device")
            buf += chunk
        return bytes(buf)

    def read_packet(self):
        first = self.read_exact(1)[0]
        n, mult = 0, 1
        while True:
            b = self.read_exact(1)[0]
            n += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        return first, self.read_exact(n) if n else b""

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class ScriptedServer:
    def __init__(self, pki, port):
        self.program = Program()
        self.port = port
        self.lock = threading.Lock()
        # dicts: kind, client_id, keep_alive (of the CONNECT), at, connack_at, end_at, pings
        self.connections = []
        self.requests = []     # (time, kind, topic, payload)
        self.pubacks = []      # packet ids the device acknowledged
        self.c2d_deliveries = []  # (time, packet id, size)
        self.active = {}       # client id -> Connection
        self.next_id = 1
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(pki.server), str(pki.server_key))
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.2)
        self.running = True
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    # --- what the tests read ---------------------------------------------------------------
    def hub_connections(self):
        with self.lock:
            return [c for c in self.connections if c["kind"] == "hub"]

    def dps_connections(self):
        with self.lock:
            return [c for c in self.connections if c["kind"] == "dps"]

    def request_times(self, prefix):
        with self.lock:
            return [t for t, _, topic, _ in self.requests if topic.startswith(prefix)]

    def stop(self):
        self.running = False
        self.listener.close()
        with self.lock:
            conns = list(self.active.values())
        for c in conns:
            c.close()

    # --- serving ---------------------------------------------------------------------------
    def _accept(self):
        while self.running:
            try:
                raw, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            t.start()

    def _serve(self, raw):
        raw.settimeout(60)
        try:
            sock = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            raw.close()
            return
        record = {"kind": None, "client_id": None, "at": time.monotonic(), "connack_at": None,
                  "end_at": None, "pings": []}
        conn = Connection(self, sock, record)
        closer = None
        try:
            while self.running:
                first, body = conn.read_packet()
                kind = first >> 4
                if kind == 1:
                    closer = self._on_connect(conn, body)
                elif kind == 8:
                    pid = body[:2]
                    codes, i = bytearray(), 2
                    while i < len(body):
                        n = struct.unpack(">H", body[i:i + 2])[0]
                        codes.append(body[i + 2 + n])
                        i += 3 + n
                    conn.write(packet(0x90, pid + bytes(codes)))
                    if record["kind"] == "hub":
                        self._deliver_c2d(conn)
                elif kind == 3:
                    self._on_publish(conn, first, body)
                elif kind == 4:
                    with self.lock:
                        self.pubacks.append(struct.unpack(">H", body[:2])[0])
                        self.program.c2d = [m for m in self.program.c2d
                                            if m["id"] != self.pubacks[-1]]
                elif kind == 12:
                    record["pings"].append(time.monotonic())
                    if not self.program.silent_pings:
                        conn.write(packet(0xD0, b""))
                elif kind == 14:
                    break
                conn.flush()
                if record.get("close_now"):
                    break
        except (ConnectionError, OSError, ssl.SSLError, IndexError, struct.error):
            pass
        finally:
            if closer:
                closer.cancel()
            record["end_at"] = time.monotonic()
            with self.lock:
                if self.active.get(record["client_id"]) is conn:
                    del self.active[record["client_id"]]
            conn.close()

    def _on_connect(self, conn, body):
        n = struct.unpack(">H", body[:2])[0]
        flags = body[2 + n + 1]
        i = 2 + n + 4
        cid_len = struct.unpack(">H", body[i:i + 2])[0]
        client_id = body[i + 2:i + 2 + cid_len].decode()
        i += 2 + cid_len
        user = ""
        if flags & 0x80:
            ul = struct.unpack(">H", body[i:i + 2])[0]
            user = body[i + 2:i + 2 + ul].decode()
        rec = conn.record
        rec["kind"] = "dps" if "/registrations/" in user else "hub"
        rec["client_id"] = client_id
        rec["keep_alive"] = struct.unpack(">H", body[2 + n + 2:2 + n + 4])[0]
        with self.lock:
            older = self.active.get(client_id)
            self.active[client_id] = conn
            self.connections.append(rec)
        if older is not None:  # one connection per device: the hub drops the older one
            older.close()
        code = self.program.connack if rec["kind"] == "hub" else 0
        conn.write(packet(0x20, bytes([0, code])))
        conn.flush()
        rec["connack_at"] = time.monotonic()
        if code:
            rec["close_now"] = True
        after = self.program.close_after_connack
        if rec["kind"] == "hub" and after is not None:
            t = threading.Timer(after, conn.close)
            t.daemon = True
            t.start()
            return t
        return None

    def _deliver_c2d(self, conn):
        with self.lock:
            pending = list(self.program.c2d)
        for m in pending:
            conn.write(publish(m["topic"], m["payload"], 1, m["id"]))
            with self.lock:
                self.c2d_deliveries.append((time.monotonic(), m["id"], len(m["payload"])))

    def add_c2d(self, device_id, payload):
        with self.lock:
            pid = self.next_id
            self.next_id += 1
            self.program.c2d.append({"id": pid, "payload": payload,
                                     "topic": f"devices/{device_id}/messages/devicebound/"})
        return pid

    @staticmethod
    def _nth(seq, i):
        return seq[i] if i < len(seq) else seq[-1]

    def _on_publish(self, conn, first, body):
        qos = (first >> 1) & 3
        n = struct.unpack(">H", body[:2])[0]
        topic = body[2:2 + n].decode()
        at = 2 + n
        if qos:
            conn.write(packet(0x40, body[at:at + 2]))
            at += 2
        payload = body[at:]
        now = time.monotonic()
        with self.lock:
            index = sum(1 for _, k, t, _ in self.requests
                        if k == conn.record["kind"] and t.split("?")[0] == topic.split("?")[0])
            self.requests.append((now, conn.record["kind"], topic, payload))
        rid = _rid(topic)
        prog = self.program
        if topic.startswith("$dps/registrations/"):
            # The register request and the polls share one script.
            with self.lock:
                index = sum(1 for _, k, _, _ in self.requests if k == "dps") - 1
            status, query, state = self._nth(prog.dps, index)
            cid = conn.record["client_id"]
            if state == "assigned":
                answer = ASSIGNED % (cid, cid)
            elif state == "assigning":
                answer = '{"operationId":"op-1","status":"assigning"}'
            else:
                answer = '{"errorCode":%d001,"message":"scripted"}' % status
            conn.write(publish(f"$dps/registrations/res/{status}/?$rid={rid}{query}",
                               answer.encode()))
        elif topic.startswith("$iothub/twin/GET/"):
            status = self._nth(prog.twin, index)
            answer = b'{"desired":{"$version":1},"reported":{}}' if status == 200 else \
                b'{"errorCode":%d001,"message":"scripted"}' % status
            conn.write(publish(f"$iothub/twin/res/{status}/?$rid={rid}", answer))
            if prog.close_after_twin:
                conn.record["close_now"] = True
        elif topic.startswith("$iothub/twin/PATCH/properties/reported/"):
            status = self._nth(prog.reported, index)
            conn.write(publish(f"$iothub/twin/res/{status}/?$rid={rid}&$version={index + 2}"))
