//! Probing: ICMP and TCP probes, prober workers, the agent and path tracing.
//!
//! The probe engine ([`Engine`]) takes targets ([`ProbeTarget`]: an address, and ICMP echo
//! or TCP connect to a port), checks each against the [`AllowList`] before anything is sent,
//! and gives per target the packets sent and received, loss and RTT figures
//! ([`ProbeOutcome`]). ICMP runs over one socket per address family (raw, or the kernel's
//! unprivileged ICMP datagram socket) with thousands of targets in flight at once, all
//! sends paced under one packets-per-second cap.
//!
//! The tracer ([`Tracer`], module [`trace`]) runs mtr-style, Paris-style ICMP traces to many
//! destinations at once over one raw socket per family, and gives each as a
//! [`graph_store::paths::Run`]; [`trace_loop`] runs it on the stored schedule for prober
//! workers (the agent traces its own host's pairs).

pub mod agent;
pub mod allow;
mod backoff;
mod bpf;
pub mod engine;
pub mod error;
pub mod health;
pub mod icmp;
mod lock;
pub mod nginx;
pub mod nginx_format;
mod pace;
pub mod record;
pub mod stats;
pub mod target;
pub mod tcp;
pub mod tls;
pub mod trace;
pub mod trace_loop;
pub mod worker;

pub use allow::{AllowList, AllowedIp, RefusalReason, Refused};
pub use engine::{Engine, EngineBuilder, EngineStats, ProbeSettings};
pub use error::{Error, Result};
pub use icmp::{Family, IcmpMode};
pub use stats::{ProbeOutcome, RttStats};
pub use target::{ProbeKind, ProbeTarget};
pub use trace::{TraceProtocol, TraceSettings, TraceTarget, Tracer, TracerBuilder, TracerStats};
