#!/usr/bin/env python3
"""An icelab peer built on aiortc: the peer contract (docs/peer-contract.md) in Python.

icelab starts it inside a lab host's namespace with the configuration in
$ICELAB_PEER_CONFIG; it reads the other side's signaling as JSON lines on stdin and
writes signaling and timestamped events as JSON lines on stdout.

aiortc's quirks, and what this peer does about each:
- it gathers every candidate before the SDP is ready (no trickle): the offer/answer
  carries all candidates, and they are also reported one by one as `candidate_gathered`;
- it uses only the first STUN and the first TURN URL it is given: the TURN URLs are passed
  in the scenario's order, so a file that needs TURN over TCP lists it first
  (`turn-transports = ["tcp"]`);
- it checks TLS certificates, and the lab's TURN server has a self-signed one made at lab
  start: for `turns:` the TLS context here does not verify it (lab use only);
- with no ICE servers it falls back to a public STUN server that a lab cannot reach: it is
  always given an explicit (possibly empty) list.

Use it as `answerer-peer = { command = ["python3", "examples/aiortc-peer/peer.py"] }`
(pip install aiortc).
"""

import asyncio
import json
import os
import ssl
import sys
import time

import aiortc.rtcicetransport as ice_transport
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

CONTRACT = 1
START = time.monotonic()


def now_ms():
    return (time.monotonic() - START) * 1000.0


def emit(event, **fields):
    sys.stdout.write(json.dumps({"event": event, "t_ms": now_ms(), **fields}) + "\n")
    sys.stdout.flush()


def signal(msg):
    emit("signal", signal=msg)


def unverified_tls(servers):
    """aioice accepts an SSLContext where it takes `turn_ssl`: one that trusts the lab's cert."""
    kwargs = original_connection_kwargs(servers)
    if kwargs.get("turn_ssl") is True:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        kwargs["turn_ssl"] = ctx
    return kwargs


original_connection_kwargs = ice_transport.connection_kwargs
ice_transport.connection_kwargs = unverified_tls


def candidate_info(c, url=None):
    """aiortc/aioice candidate -> the contract's candidate object."""
    kind = getattr(c, "type", None)
    info = {
        "candidate_type": kind,
        "base_type": kind,
        "protocol": (getattr(c, "protocol", None) or getattr(c, "transport", "udp")).lower(),
        "address": getattr(c, "ip", None) or getattr(c, "host", None),
        "port": c.port,
    }
    related = getattr(c, "relatedAddress", None) or getattr(c, "related_address", None)
    if related:
        info["related_address"] = related
    if url:
        info["url"] = url
    return info


def sdp_candidates(sdp):
    return [line[len("a=candidate:"):] for line in sdp.splitlines() if line.startswith("a=candidate:")]


class Peer:
    def __init__(self, cfg):
        self.cfg = cfg
        self.role = cfg["role"]
        servers = [
            RTCIceServer(urls=s["urls"], username=s.get("username") or None, credential=s.get("credential") or None)
            for s in cfg.get("ice_servers", [])
        ]
        # iceTransportPolicy is not supported by aiortc: a relay-only scenario is reported
        # as whatever aiortc selects, and the judge says whether that was a relay.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        # The one TURN URL aiortc uses (its first), whose transport its relay candidates have.
        turn = [u for s in cfg.get("ice_servers", []) for u in s["urls"] if u.startswith("turn")]
        self.relay_protocol = None
        if turn:
            parsed = ice_transport.parse_stun_turn_uri(turn[0])
            self.relay_protocol = "tls" if parsed["scheme"] == "turns" else parsed["transport"]
        self.remote_known = {}
        self.remote_set = False
        self.pending = []
        self.finished = asyncio.get_running_loop().create_future()
        self.dc_opened = False
        self.pc.on("iceconnectionstatechange", self.on_ice)
        self.pc.on("connectionstatechange", self.on_pc)
        self.pc.on("datachannel", self.watch_channel)

    def fail(self, kind, phase, message):
        if not self.finished.done():
            self.finished.set_result((kind, phase, message))

    async def on_ice(self):
        state = self.pc.iceConnectionState
        emit("ice_state", state=state)
        if state in ("connected", "completed"):
            self.emit_pair()
        elif state == "failed":
            self.fail("failed", "ice", "ICE failed")

    async def on_pc(self):
        if self.pc.connectionState == "connected":
            emit("dtls_connected")
        elif self.pc.connectionState == "failed":
            self.fail("failed", "dtls", "peer connection failed")

    def selected(self):
        """The nominated pair, from aioice's connection (aiortc's getStats has no pairs)."""
        try:
            conn = self.pc.sctp.transport.transport._connection
            pair = conn._nominated.get(1)
        except AttributeError:
            return None
        if pair is None:
            return None
        local = candidate_info(pair.protocol.local_candidate)
        if local["candidate_type"] == "relay" and self.relay_protocol:
            local["relay_protocol"] = self.relay_protocol
        remote = candidate_info(pair.remote_candidate)
        known = self.remote_known.get(f"{remote['address']}:{remote['port']}")
        if remote["candidate_type"] == "prflx" and known:
            remote["base_type"] = known
        relay = "relay" in (local["base_type"], remote["base_type"])
        out = {"local": local, "remote": remote, "relay_based": relay}
        if local.get("relay_protocol"):
            out["relay_protocol"] = local["relay_protocol"]
        return out

    def emit_pair(self):
        pair = self.selected()
        if pair:
            emit("selected_pair", pair=pair)

    def watch_channel(self, dc):
        self.dc = dc
        state = {"peer_fin": False, "got_ack": False, "rx_bytes": 0, "rx_msgs": 0, "first": None, "last": None}
        self.data = state

        @dc.on("message")
        def on_message(msg):
            if isinstance(msg, str):
                if msg == "fin":
                    state["peer_fin"] = True
                    dc.send("ack")
                elif msg == "ack":
                    state["got_ack"] = True
            else:
                t = time.monotonic()
                state["first"] = state["first"] or t
                state["last"] = t
                state["rx_bytes"] += len(msg)
                state["rx_msgs"] += 1
            if state["peer_fin"] and state["got_ack"] and "sent" in state:
                self.data_done()

        @dc.on("open")
        def on_open():
            self.opened()

        if dc.readyState == "open":
            self.opened()

    def opened(self):
        if self.dc_opened:
            return
        self.dc_opened = True
        emit("data_channel_open")
        asyncio.ensure_future(self.send_data())

    async def send_data(self):
        chunk = b"\xa5" * max(1, self.cfg.get("data_chunk_bytes", 16384))
        duration = self.cfg.get("data_duration_ms", 1000) / 1000.0
        rate = self.cfg.get("data_rate_kbps")
        start = time.monotonic()
        sent = msgs = 0
        while time.monotonic() - start < duration:
            if rate:
                due = start + sent * 8 / (rate * 1000.0)
                if due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
            # aiortc queues without bound: wait for the SCTP buffer to drain (a flood is paced).
            while self.dc.bufferedAmount > 256 * 1024:
                await asyncio.sleep(0.002)
            self.dc.send(chunk)
            sent += len(chunk)
            msgs += 1
        self.data["sent"] = (sent, msgs, time.monotonic() - start)
        self.dc.send("fin")
        if self.data["peer_fin"] and self.data["got_ack"]:
            self.data_done()

    def data_done(self):
        if self.finished.done():
            return
        s = self.data
        sent, msgs, send_s = s["sent"]
        recv_s = (s["last"] - s["first"]) if s["first"] else 0.0
        self.emit_pair()
        emit(
            "data_stats",
            stats={
                "bytes_sent": sent,
                "bytes_received": s["rx_bytes"],
                "messages_sent": msgs,
                "messages_received": s["rx_msgs"],
                "send_duration_ms": send_s * 1000.0,
                "recv_duration_ms": recv_s * 1000.0,
                "send_bytes_per_sec": sent / send_s if send_s else 0.0,
                "recv_bytes_per_sec": s["rx_bytes"] / recv_s if recv_s else 0.0,
            },
        )
        self.finished.set_result(None)

    async def describe(self, desc):
        emit("gathering_started")
        await self.pc.setLocalDescription(desc)
        sdp = self.pc.localDescription.sdp
        for c in sdp_candidates(sdp):
            info = candidate_info(candidate_from_sdp(c))
            if info["candidate_type"] == "relay" and self.relay_protocol:
                info["relay_protocol"] = self.relay_protocol
            emit("candidate_gathered", candidate=info)
        emit("gathering_complete")
        signal({"type": self.pc.localDescription.type, "sdp": sdp})
        signal({"type": "end_of_candidates"})

    async def remote_description(self, kind, sdp):
        for c in sdp_candidates(sdp):
            self.remember(c)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        self.remote_set = True
        for c in self.pending:
            await self.pc.addIceCandidate(c)
        self.pending = []

    def remember(self, line):
        c = candidate_from_sdp(line)
        self.remote_known[f"{c.ip}:{c.port}"] = c.type
        return c

    async def on_signal(self, msg):
        kind = msg.get("type")
        if kind == "offer" and self.role == "answerer":
            await self.remote_description("offer", msg["sdp"])
            await self.describe(await self.pc.createAnswer())
        elif kind == "answer" and self.role == "offerer":
            await self.remote_description("answer", msg["sdp"])
        elif kind == "candidate":
            init = msg["candidate"]
            line = init["candidate"].split(":", 1)[1] if init["candidate"].startswith("candidate:") else init["candidate"]
            c = self.remember(line)
            c.sdpMid = init.get("sdpMid")
            c.sdpMLineIndex = init.get("sdpMLineIndex")
            if self.remote_set:
                await self.pc.addIceCandidate(c)
            else:
                self.pending.append(c)
        elif kind == "bye":
            self.fail("peer_gone", "signaling", f"peer said bye: {msg.get('reason', '')}")

    async def read_signals(self):
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while True:
            line = await reader.readline()
            if not line:
                return  # the other side is gone; the deadline still bounds us
            if line.strip():
                try:
                    await self.on_signal(json.loads(line))
                except Exception as e:  # a bad line or a stack error ends the call, reported
                    self.fail("internal", "signaling", f"{type(e).__name__}: {e}")

    async def run(self):
        emit("started", role=self.role, implementation="aiortc " + __import__("aiortc").__version__)
        if self.role == "offerer":
            self.watch_channel(self.pc.createDataChannel("icelab"))
            await self.describe(await self.pc.createOffer())
        reader = asyncio.ensure_future(self.read_signals())
        try:
            result = await asyncio.wait_for(asyncio.shield(self.finished), self.cfg.get("deadline_ms", 15000) / 1000.0)
        except asyncio.TimeoutError:
            result = ("timeout", "ice" if not self.dc_opened else "data", f"deadline of {self.cfg.get('deadline_ms')} ms exceeded")
        reader.cancel()
        if result is None:
            emit("done")
            await asyncio.sleep(self.cfg.get("linger_ms", 100) / 1000.0)
            code = 0
        else:
            kind, phase, message = result
            emit("error", kind=kind, phase=phase, message=message)
            if kind != "peer_gone":
                signal({"type": "bye", "reason": message})
            code = 1
        try:
            await asyncio.wait_for(self.pc.close(), 1.0)
        except Exception:
            pass
        return code


async def main():
    try:
        cfg = json.loads(os.environ["ICELAB_PEER_CONFIG"])
    except (KeyError, ValueError) as e:
        print(f"peer.py: no usable $ICELAB_PEER_CONFIG: {e}", file=sys.stderr)
        return 2
    if int(os.environ.get("ICELAB_PEER_CONTRACT", CONTRACT)) != CONTRACT:
        print(f"peer.py: speaks peer contract {CONTRACT} only", file=sys.stderr)
        return 2
    return await Peer(cfg).run()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
