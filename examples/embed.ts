import { ManualClock, parseIpv4Address, parseMacAddress, Session } from "../mod.ts";
const session = new Session({
  id: "demo",
  token: "demo",
  clock: new ManualClock(),
  stack: {
    mac: parseMacAddress("02:00:00:00:00:02"),
    ipv4: { address: parseIpv4Address("10.0.2.2"), prefixLength: 24 },
    mtu: 1500,
  },
});
session.attachTunnel({
  description: "console",
  send: (frames) => console.log(`stack sent ${frames.length} frame(s)`),
  close: () => {},
});
