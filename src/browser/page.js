// icelab browser peer: runs one side of a call in a real browser. The adapter
// (`icelab browser-peer`) serves this page on loopback inside the lab host's namespace,
// hands it the peer contract's config (GET /config), relays the other side's signaling
// (GET /signals, long-poll) and turns what it POSTs to /event into contract events.
"use strict";

const wall = () => performance.timeOrigin + performance.now();
let outbox = [];
let posting = false;

function emit(ev) {
  ev.t_wall = wall();
  outbox.push(ev);
  flush();
}

async function flush() {
  if (posting || outbox.length === 0) return;
  posting = true;
  const batch = outbox;
  outbox = [];
  try {
    await fetch("/event", { method: "POST", body: JSON.stringify(batch) });
  } catch (e) {
    outbox = batch.concat(outbox);
  }
  posting = false;
  if (outbox.length) flush();
}

// `fatal: false` reports a problem the call may survive; the adapter ends on fatal ones.
function fail(kind, phase, message, fatal = true) {
  emit({ event: "error", kind, phase, message: String(message), fatal });
}

// Candidate line fields: foundation component protocol priority address port typ type ...
function parseLine(line) {
  const f = line.replace(/^a=/, "").replace(/^candidate:/, "").split(/\s+/);
  const out = { protocol: (f[2] || "").toLowerCase(), address: f[4] || "", port: Number(f[5] || 0), type: f[7] || "" };
  for (let i = 8; i + 1 < f.length; i += 2) if (f[i] === "raddr") out.related = f[i + 1];
  return out;
}

const local = new Map();
const remote = new Map();
const key = (a, p) => `${a}:${p}`;

// The signaled candidate at `address:port`: [address, type], or undefined.
function signaled(known, address, port) {
  if (address) return known.has(key(address, port)) ? [address, known.get(key(address, port))] : undefined;
  // Chromium redacts a remote prflx's address in its stats: the port alone, when a
  // single signaled candidate has it, names the candidate.
  const m = [...known].filter(([k]) => k.endsWith(`:${port}`));
  return m.length === 1 ? [m[0][0].slice(0, m[0][0].lastIndexOf(":")), m[0][1]] : undefined;
}

function info(type, protocol, address, port, extra, known) {
  const c = { candidate_type: type, base_type: type, protocol: (protocol || "").toLowerCase(), address: address || "", port: port || 0 };
  // A prflx that is really a signaled candidate (e.g. the other side's relay, whose
  // check arrived before its candidate) takes its type.
  const s = type === "prflx" ? signaled(known, c.address, c.port) : undefined;
  if (s) [c.address, c.base_type] = s;
  if (extra.relayProtocol) c.relay_protocol = extra.relayProtocol.toLowerCase();
  if (extra.related) c.related_address = extra.related;
  if (extra.url) c.url = extra.url;
  return c;
}

async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  // Firefox has no transport stats: its selected pair carries `selected`.
  if (!pair) stats.forEach((s) => { if (s.type === "candidate-pair" && s.selected) pair = s; });
  if (!pair) stats.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
  if (!pair) return null;
  const l = stats.get(pair.localCandidateId), r = stats.get(pair.remoteCandidateId);
  if (!l || !r) return null;
  const lc = info(l.candidateType, l.protocol, l.address || l.ip, l.port, { relayProtocol: l.relayProtocol, url: l.url }, local);
  const rc = info(r.candidateType, r.protocol, r.address || r.ip, r.port, {}, remote);
  const relayed = lc.base_type === "relay" || rc.base_type === "relay";
  const out = { local: lc, remote: rc, relay_based: relayed };
  if (lc.relay_protocol) out.relay_protocol = lc.relay_protocol;
  if (pair.currentRoundTripTime !== undefined) out.rtt_ms = pair.currentRoundTripTime * 1000;
  out.bytes_sent = pair.bytesSent || 0;
  out.bytes_received = pair.bytesReceived || 0;
  return out;
}

async function reportPair(pc) {
  const p = await selectedPair(pc);
  if (!p) return;
  emit({ event: "selected_pair", pair: p });
  if (p.rtt_ms !== undefined) emit({ event: "rtt", rtt_ms: p.rtt_ms });
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// The data plan: push chunks for duration_ms (paced or flooding), then `fin`; answer the
// other side's `fin` with `ack`; finished when both the other's fin and our ack are seen.
function runData(dc, cfg, pc, finish) {
  dc.binaryType = "arraybuffer";
  const st = { bytes_sent: 0, bytes_received: 0, messages_sent: 0, messages_received: 0, send_duration_ms: 0, recv_duration_ms: 0 };
  let firstRx = null, lastRx = null, peerFin = false, gotAck = false, sendDone = false;
  const check = () => {
    if (!(peerFin && gotAck && sendDone)) return;
    st.recv_duration_ms = firstRx === null ? 0 : lastRx - firstRx;
    st.send_bytes_per_sec = st.send_duration_ms ? st.bytes_sent / (st.send_duration_ms / 1000) : 0;
    st.recv_bytes_per_sec = st.recv_duration_ms ? st.bytes_received / (st.recv_duration_ms / 1000) : 0;
    finish(st);
  };
  dc.onmessage = (m) => {
    if (typeof m.data === "string") {
      if (m.data === "fin") { peerFin = true; dc.send("ack"); }
      else if (m.data === "ack") gotAck = true;
      check();
      return;
    }
    const now = performance.now();
    if (firstRx === null) firstRx = now;
    lastRx = now;
    st.bytes_received += m.data.byteLength;
    st.messages_received += 1;
  };
  dc.onclose = () => { if (!(peerFin && gotAck)) fail("failed", "data", "data channel closed before the exchange finished"); };
  const chunk = new Uint8Array(Math.max(1, cfg.data_chunk_bytes)).fill(0xa5);
  const rate = cfg.data_rate_kbps ? (cfg.data_rate_kbps * 1000) / 8 : null;
  const high = 1 << 20;
  dc.bufferedAmountLowThreshold = high / 2;
  (async () => {
    const start = performance.now();
    while (performance.now() - start < cfg.data_duration_ms) {
      if (dc.bufferedAmount > high) {
        await new Promise((r) => { dc.onbufferedamountlow = r; setTimeout(r, 50); });
        continue;
      }
      dc.send(chunk);
      st.bytes_sent += chunk.length;
      st.messages_sent += 1;
      if (rate) {
        const due = start + (st.bytes_sent / rate) * 1000;
        const wait = Math.min(due, start + cfg.data_duration_ms) - performance.now();
        if (wait > 0) await sleep(wait);
      }
    }
    st.send_duration_ms = performance.now() - start;
    dc.send("fin");
    sendDone = true;
    check();
  })().catch((e) => fail("internal", "data", "send failed: " + e));
}

async function main() {
  const { config: cfg } = await (await fetch("/config")).json();
  // Headless browsers enumerate network interfaces only for a page that holds media
  // permission; without it they gather on the default route only (or, with no default
  // route, on a wildcard "any address" network). A fake microphone grants it.
  try {
    const s = await navigator.mediaDevices.getUserMedia({ audio: true });
    s.getTracks().forEach((t) => t.stop());
  } catch (e) {
    fail("internal", "signaling", "getUserMedia failed (host candidates may be limited): " + e, false);
  }
  const pc = new RTCPeerConnection({ iceServers: cfg.ice_servers, iceTransportPolicy: cfg.transport_policy });
  // Start-up ends here: the browser, the page, the media permission and the connection
  // object are ready; what follows is the call.
  emit({ event: "browser_ready", user_agent: navigator.userAgent });
  const signal = (s) => emit({ event: "signal", signal: s });
  let pending = [];
  let connected = false, finished = false, ended = false;

  pc.onicegatheringstatechange = () => {
    if (pc.iceGatheringState === "gathering") emit({ event: "gathering_started" });
    if (pc.iceGatheringState === "complete") emit({ event: "gathering_complete" });
  };
  pc.onicecandidate = (e) => {
    // Firefox reports the end twice (an empty candidate, then null): relay it once.
    if (!e.candidate || !e.candidate.candidate) {
      if (!ended) signal({ type: "end_of_candidates" });
      ended = true;
      return;
    }
    const c = e.candidate, p = parseLine(c.candidate);
    const type = c.type || p.type, address = c.address || p.address, port = c.port || p.port;
    local.set(key(address, port), type);
    emit({ event: "candidate_gathered", candidate: info(type, c.protocol || p.protocol, address, port,
      { relayProtocol: c.relayProtocol, related: c.relatedAddress || p.related, url: c.url || e.url }, local) });
    signal({ type: "candidate", candidate: c.toJSON() });
  };
  pc.oniceconnectionstatechange = () => {
    emit({ event: "ice_state", state: pc.iceConnectionState });
    if ((pc.iceConnectionState === "connected" || pc.iceConnectionState === "completed") && !connected) {
      connected = true;
      reportPair(pc);
    }
    if (pc.iceConnectionState === "failed") fail("failed", "ice", "ICE failed");
  };
  // DTLS is up when its transport says so; `connectionstatechange` is derived from it
  // (and from ICE) and is dispatched later, sometimes after the channel's `open`.
  let dtlsUp = false;
  const dtlsConnected = () => {
    if (!dtlsUp) emit({ event: "dtls_connected" });
    dtlsUp = true;
  };
  const watchDtls = () => {
    const t = pc.sctp && pc.sctp.transport;
    if (!t || t.icelabWatched) return;
    t.icelabWatched = true;
    t.addEventListener("statechange", () => { if (t.state === "connected") dtlsConnected(); });
    if (t.state === "connected") dtlsConnected();
  };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") dtlsConnected();
    if (pc.connectionState === "failed" && connected && !finished) fail("failed", "dtls", "peer connection failed");
  };
  const onChannel = (dc) => {
    const open = () => {
      emit({ event: "data_channel_open" });
      runData(dc, cfg, pc, async (st) => {
        finished = true;
        emit({ event: "data_stats", stats: st });
        await reportPair(pc);
        emit({ event: "done" });
      });
    };
    if (dc.readyState === "open") open(); else dc.onopen = open;
  };
  if (cfg.role === "offerer") {
    onChannel(pc.createDataChannel("icelab"));
    await pc.setLocalDescription(await pc.createOffer());
    signal({ type: "offer", sdp: pc.localDescription.sdp });
  } else {
    pc.ondatachannel = (e) => onChannel(e.channel);
  }

  const addCandidate = async (m) => {
    try {
      if (m.type === "end_of_candidates") await pc.addIceCandidate();
      else {
        const p = parseLine(m.candidate.candidate);
        remote.set(key(p.address, p.port), p.type);
        await pc.addIceCandidate(m.candidate);
      }
    } catch (e) {
      if (m.type !== "end_of_candidates") fail("internal", "ice", "addIceCandidate: " + e, false);
    }
  };
  // Signaling from the other side, in order; candidates wait for the description.
  for (;;) {
    let msgs;
    try { msgs = await (await fetch("/signals")).json(); } catch (e) { await sleep(50); continue; }
    for (const m of msgs) {
      if (m.type === "offer" || m.type === "answer") {
        await pc.setRemoteDescription({ type: m.type, sdp: m.sdp });
        watchDtls();
        if (m.type === "offer") {
          await pc.setLocalDescription(await pc.createAnswer());
          signal({ type: "answer", sdp: pc.localDescription.sdp });
        }
        for (const c of pending) await addCandidate(c);
        pending = [];
      } else if (m.type === "candidate" || m.type === "end_of_candidates") {
        if (pc.remoteDescription) await addCandidate(m); else pending.push(m);
      } else if (m.type === "bye" && !finished) {
        fail("peer_gone", connected ? "data" : "signaling", "the other side said bye: " + (m.reason || ""));
      } else if (m.type === "eof" && !connected) {
        fail("peer_gone", "signaling", "the other side's signaling closed");
      }
    }
  }
}

main().catch((e) => fail("internal", "signaling", "page: " + e));
