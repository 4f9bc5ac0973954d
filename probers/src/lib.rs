//! Probing: ICMP and TCP probes, prober workers, the agent and path tracing.
//!
//! Empty for now; the probing issue fills it. Everything here that sends packets will
//! check its target against an allow-list of networks first.
