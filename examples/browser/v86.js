// The browser VM page (v86.html): creates a netisle session, boots v86 with
// the guest of scripts/build_v86_guest.sh, points v86's network card at the
// session's tunnel (one Ethernet frame per WebSocket message), and shows the
// session's state live. The session's token stays in this page's memory
// (never in storage: share links on the same origin must not read it).
//
// Query: ?api=URL for a netisle server on another origin (it must list this
// page's origin in NETISLE_CORS_ORIGINS); by default the page's own origin.
// Fragment (never sent to a server): #session=ID&token=TOKEN joins an
// existing session instead of creating one; &report=URL posts the outcome
// there once the guest is up (tests). globalThis.netisleV86 exposes the state.

const params = new URLSearchParams(location.search);
const fragment = new URLSearchParams(location.hash.slice(1));
history.replaceState(null, "", location.pathname + location.search); // the token leaves the URL bar
const api = (params.get("api") ?? location.origin).replace(/\/$/, "");
const $ = (id) => document.getElementById(id);
const state = { sessionId: null, bootMs: null, lease: null, ready: false, error: null };
globalThis.netisleV86 = state;

function setStatus(text, cls = "") {
  $("status").textContent = text;
  $("status").className = cls;
}

async function call(method, path, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const r = await fetch(`${api}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!r.ok && r.status !== 204) {
    throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  }
  return r.status === 204 ? null : r.json();
}

async function main() {
  let id = fragment.get("session");
  let token = fragment.get("token");
  if (!id || !token) {
    setStatus("Creating a session…");
    ({ id, token } = await call("POST", "/v1/sessions"));
  }
  state.sessionId = id;
  $("sid").textContent = id;
  const relay = `${api.replace(/^http/, "ws")}/v1/sessions/${id}/tunnel?token=${
    encodeURIComponent(token)
  }`;

  setStatus("Booting the VM…");
  const started = performance.now();
  const emulator = new V86({
    wasm_path: "v86.wasm",
    memory_size: 128 * 1024 * 1024,
    vga_memory_size: 2 * 1024 * 1024,
    bios: { url: "guest/seabios.bin" },
    vga_bios: { url: "guest/vgabios.bin" },
    bzimage: { url: "guest/bzImage" },
    initrd: { url: "guest/initrd.img" },
    cmdline: "console=ttyS0 quiet loglevel=3 tsc=reliable mitigations=off random.trust_cpu=on",
    fastboot: true,
    acpi: false,
    disable_speaker: true,
    autostart: true,
    net_device: { type: "ne2k", relay_url: relay },
  });
  globalThis.netisleEmulator = emulator;

  // The serial console: output into the <pre>, keys back to the guest.
  const out = $("console");
  let line = "";
  emulator.add_listener("serial0-output-byte", (byte) => {
    const ch = String.fromCharCode(byte);
    if (ch === "\r") return;
    out.textContent += ch;
    if (out.textContent.length > 200_000) out.textContent = out.textContent.slice(-100_000);
    out.scrollTop = out.scrollHeight;
    if (ch !== "\n") {
      line += ch;
      return;
    }
    onGuestLine(line);
    line = "";
  });
  out.addEventListener("keydown", (ev) => {
    if (ev.key.length === 1) emulator.serial0_send(ev.key);
    else if (ev.key === "Enter") emulator.serial0_send("\n");
    else if (ev.key === "Backspace") emulator.serial0_send("\x7f");
    else return;
    ev.preventDefault();
  });

  function onGuestLine(text) {
    if (text.startsWith("NETISLE-GUEST dhcp-ok") && state.bootMs === null) {
      state.bootMs = Math.round(performance.now() - started);
      $("boot").textContent = `${(state.bootMs / 1000).toFixed(1)} s to a lease`;
      console.log(`NETISLE-V86 boot ${state.bootMs} ms`);
    }
    if (text.startsWith("NETISLE-GUEST ready")) {
      state.ready = true;
      setStatus("The guest is up: it has a lease and serves TCP 7 and HTTP 80.", "ready");
      $("echo").disabled = false;
      $("share").disabled = false;
      console.log("NETISLE-V86 ready");
      void report();
    }
  }

  // The session, live.
  const refresh = async () => {
    try {
      const view = await call("GET", `/v1/sessions/${id}`, token);
      const sockets = await call("GET", `/v1/sessions/${id}/sockets`, token);
      $("tunnel").textContent = view.tunnel.attached ? view.tunnel.kind : "not attached";
      const lease = (view.dhcp?.leases ?? []).find((l) => l.state === "bound");
      state.lease = lease ? lease.address : null;
      $("lease").textContent = lease
        ? `${lease.address} to ${lease.mac}${lease.hostname ? ` (${lease.hostname})` : ""}`
        : "none yet";
      $("frames").textContent = `${view.counters.rxFrames} / ${view.counters.txFrames}`;
      $("sockets").textContent = `${sockets.sockets.length} open`;
    } catch (err) {
      $("tunnel").textContent = String(err);
    }
  };
  setInterval(refresh, 1000);
  void refresh();

  state.echo = (text) => echo(id, token, state.lease, text);
  const report = async () => {
    const to = fragment.get("report");
    if (!to) return;
    await refresh();
    const r = { sessionId: id, bootMs: state.bootMs, lease: state.lease };
    r.leaseShown = $("lease").textContent;
    try {
      r.echo = await state.echo("hello from the page");
    } catch (err) {
      r.echo = `failed: ${err}`;
    }
    await fetch(to, { method: "POST", mode: "no-cors", body: JSON.stringify(r) });
  };
  $("echo").addEventListener("click", async () => {
    $("result").textContent = "…";
    try {
      $("result").textContent = await echo(id, token, state.lease, "hello from the page");
    } catch (err) {
      $("result").textContent = String(err);
    }
  });
  $("share").addEventListener("click", async () => {
    try {
      const s = await call("POST", `/v1/sessions/${id}/shares`, token, {
        address: state.lease,
        port: 80,
        name: "v86 guest",
      });
      $("result").innerHTML = "";
      const a = document.createElement("a");
      a.href = a.textContent = s.url;
      a.target = "_blank";
      $("result").append("Share link (until ", s.expiresAt, "): ", a);
    } catch (err) {
      $("result").textContent = String(err);
    }
  });
}

/** An API connect to `address:7` in the session: sends `text`, returns what came back. */
async function echo(id, token, address, text) {
  const base = `/v1/sessions/${id}/sockets`;
  const { id: k } = await call("POST", base, token, { protocol: "tcp" });
  try {
    await call("POST", `${base}/${k}/connect`, token, { address, port: 7, timeoutMs: 10000 });
    const r = await fetch(`${api}${base}/${k}/send`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
      body: new TextEncoder().encode(text),
    });
    if (!r.ok) throw new Error(`send: ${r.status}`);
    let got = "";
    while (got.length < text.length) {
      const rr = await fetch(`${api}${base}/${k}/recv?timeoutMs=10000`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}` },
      });
      if (rr.status !== 200) throw new Error(`recv: ${rr.status}`);
      got += new TextDecoder().decode(await rr.arrayBuffer());
    }
    return got;
  } finally {
    await call("DELETE", `${base}/${k}`, token).catch(() => {});
  }
}

main().catch((err) => {
  state.error = String(err);
  setStatus(`Failed: ${err}`, "failed");
  console.log(`NETISLE-V86 error ${err}`);
});
