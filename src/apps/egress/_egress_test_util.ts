/**
 * Test helpers for the egress gateway: a session with egress on a manual
 * clock whose tunnel records what the stack sends, the guest (10.0.2.15)
 * already known to its ARP cache, a fake dialer and a scripted DNS upstream.
 *
 * @module
 */

import { ManualClock, Session, type TunnelEndpoint } from "../../session/mod.ts";
import { parseIpv4Address, parseMacAddress } from "../../wire/mod.ts";
import { arpRequest } from "../../session/_session_test_util.ts";
import { FakeDialer } from "./fake_dialer.ts";
import { EgressPolicy, parseEgressRules } from "./egress_policy.ts";
import { EgressService, type EgressServiceOptions } from "./egress_service.ts";
import type { DnsAnswerSet, DnsResolveOptions, DnsUpstream } from "./dns/dns_upstream.ts";
import type { DnsQuestion } from "../../wire/mod.ts";

export {
  decodeIcmp,
  decodeIp,
  decodeUdp,
  PEER_IP as GUEST_IP,
  STACK_IP,
  udpFrame,
} from "../../stack/_stack_test_util.ts";

/** An outside address the tests' policy allows (198.18.0.0/15 is opened). */
export const OUTSIDE = "198.18.0.10";
/** {@linkcode OUTSIDE} as a u32. */
export const OUTSIDE_IP: number = parseIpv4Address(OUTSIDE);

/** A DNS upstream the test scripts: answers by name, or holds until released. */
export class ScriptedUpstream implements DnsUpstream {
  readonly description = "scripted";
  /** Questions asked, in order. */
  readonly asked: DnsQuestion[] = [];
  /** Answers by lower-case name; a function may throw or wait. */
  answers = new Map<string, DnsAnswerSet | ((o: DnsResolveOptions) => Promise<DnsAnswerSet>)>();

  resolve(q: DnsQuestion, o: DnsResolveOptions): Promise<DnsAnswerSet> {
    this.asked.push(q);
    const a = this.answers.get(q.name.toLowerCase());
    if (a === undefined) return Promise.reject(new Error(`no script for ${q.name}`));
    if (typeof a === "function") return a(o);
    return Promise.resolve(structuredClone(a));
  }
}

/** Lets pending promises and microtasks run (no timer of the test's clock fires). */
export async function settle(rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}

/** A session with egress, its gateway, the fake world and what the tunnel received. */
export interface EgressBed {
  clock: ManualClock;
  session: Session;
  service: EgressService;
  dialer: FakeDialer;
  upstream: ScriptedUpstream;
  /** Frames the stack sent to the tunnel, oldest first; tests shift them off. */
  sent: Uint8Array[];
  /** Gives frames to the stack as the tunnel would. */
  input(...frames: Uint8Array[]): void;
}

/**
 * Builds an {@linkcode EgressBed}: policy opens 198.18.0.0/15 (the tests'
 * "internet"); options override the service's parts.
 */
export function egressBed(
  options: Partial<EgressServiceOptions> & { dialer?: FakeDialer } = {},
): EgressBed {
  const clock = new ManualClock(1000);
  const dialer = options.dialer ?? new FakeDialer();
  const upstream = new ScriptedUpstream();
  const service = new EgressService({
    dialer,
    upstream,
    policy: new EgressPolicy({ allow: parseEgressRules("198.18.0.0/15") }),
    ...options,
  });
  const session = new Session({
    id: "s_egress",
    token: "t",
    clock,
    stack: {
      mac: parseMacAddress("02:00:00:00:00:02"),
      ipv4: { address: parseIpv4Address("10.0.2.2"), prefixLength: 24 },
      mtu: 1500,
      egress: { enabled: true },
      // The guest stays resolved however far a test advances the clock.
      arp: { reachableMs: 1e12 },
    },
  });
  const sent: Uint8Array[] = [];
  const tunnel: TunnelEndpoint = {
    description: "test",
    send: (frames) => sent.push(...frames.map((f) => f.slice())),
    close: () => {},
  };
  session.attachTunnel(tunnel);
  session.input([arpRequest()]);
  sent.length = 0;
  service.attach(session);
  return {
    clock,
    session,
    service,
    dialer,
    upstream: (options.upstream as ScriptedUpstream | undefined) ?? upstream,
    sent,
    input: (...frames) => session.input(frames),
  };
}
