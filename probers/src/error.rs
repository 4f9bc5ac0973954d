//! The crate's one error type.
//!
//! A failed *probe* (a lost packet, a refused connection) is not an error: it is an outcome
//! ([`crate::ProbeOutcome`]). These variants are for configuration and sockets that could not
//! be set up, for targets the allow-list refuses, and for traces that could not run.

use std::io;
use std::net::IpAddr;

use crate::allow::Refused;
use crate::icmp::Family;

/// Everything that can go wrong in `probers`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A builder setting is out of range; the message says which and what is allowed.
    #[error("invalid probe setting {setting}: {reason}")]
    InvalidSetting { setting: &'static str, reason: String },

    /// The allow-list configuration itself is unusable (empty, or an entry that is not a network).
    #[error("invalid allow-list: {0}")]
    InvalidAllowList(String),

    /// A target lies outside the allow-list (or is not a unicast address); nothing was sent.
    #[error(transparent)]
    Refused(#[from] Refused),

    /// Neither a raw nor a datagram ICMP socket could be opened for this address family.
    #[error(
        "ICMP probing over {family} is unavailable: raw socket: {raw}; datagram socket: {dgram} \
         (raw sockets need root or CAP_NET_RAW; datagram ICMP sockets need the group to be in \
         sysctl net.ipv4.ping_group_range)"
    )]
    IcmpUnavailable { family: Family, raw: io::Error, dgram: io::Error },

    /// A socket operation failed; `op` names it (e.g. "set ICMP socket non-blocking").
    #[error("{op}: {source}")]
    Io {
        op: &'static str,
        #[source]
        source: io::Error,
    },

    /// The engine was built outside a tokio runtime (its sockets need one).
    #[error("the probe engine must be built inside a tokio runtime")]
    NoRuntime,

    /// The tracer's own thread or runtime could not be started.
    #[error("cannot start the tracer's thread: {0}")]
    Runtime(#[source] io::Error),

    /// The tracer has no raw ICMP socket for this family (`reason` says why it could not
    /// open one).
    #[error(
        "tracing over {family} is unavailable: {reason} (the tracer needs raw sockets: \
         run as root or give the binary CAP_NET_RAW)"
    )]
    TraceUnavailable { family: Family, reason: String },

    /// The kernel has no route to a trace's destination (nothing was sent).
    #[error("no route to {dst}: {source}; no probe sent")]
    NoRoute {
        dst: IpAddr,
        #[source]
        source: io::Error,
    },

    /// Not one probe of a trace could be sent.
    #[error("sending trace probes to {dst}: {source}")]
    TraceSend {
        dst: IpAddr,
        #[source]
        source: io::Error,
    },

    /// A PEM file (certificate, key, CA bundle) could not be read or used.
    #[error("{}: {reason}", path.display())]
    Pem { path: std::path::PathBuf, reason: String },

    /// The TLS handshake with the server failed: `reason` says why in words (unknown CA,
    /// name mismatch, …). Nothing was sent.
    #[error("TLS handshake with {server} failed: {reason}; nothing was sent")]
    Tls { server: String, reason: String },

    /// The agent was told to send its token over plain HTTP to a server off this host.
    #[error(
        "refusing to send the agent's token over plain HTTP to {server}: {host} is not a loopback \
         address. Use an https:// URL (with --ca FILE when a private CA signed the server's \
         certificate), or give --insecure-http if this network is trusted; nothing was sent"
    )]
    PlainHttp { server: String, host: String },

    /// A trace's task ended without a result (it panicked; the log says more).
    #[error("the trace to {dst} failed: {reason}")]
    TraceFailed { dst: IpAddr, reason: String },
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub(crate) fn io(op: &'static str) -> impl FnOnce(io::Error) -> Error {
        move |source| Error::Io { op, source }
    }

    pub(crate) fn setting(setting: &'static str, reason: impl Into<String>) -> Error {
        Error::InvalidSetting { setting, reason: reason.into() }
    }
}
