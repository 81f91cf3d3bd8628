//! Laminar connectors.
//!
//! A connector moves data between an external system and Arrow `RecordBatch`es. Each one
//! lives in its own folder with a typed config (`config.rs`), a source and/or sink, and is
//! registered by one feature-gated line in [`registry`]. The engine only sees the erased
//! [`DynConnector`] and the [`Source`] / [`Sink`] traits; it never imports a client SDK.
//!
//! Configuration enters two ways — SQL `WITH` options (flat, dotted snake_case keys, string
//! values) and REST JSON (nested, camelCase or snake_case) — and both end up in the same
//! typed struct through [`options`], which also produces the errors users see for unknown,
//! missing and mistyped options.

pub mod connector;
pub mod error;
pub mod format;
pub mod options;
pub mod registry;
pub mod schema;

#[cfg(any(feature = "impulse", feature = "nexmark", feature = "datagen"))]
mod pacing;

#[cfg(feature = "blackhole")]
pub mod blackhole;
#[cfg(feature = "datagen")]
pub mod datagen;
#[cfg(feature = "filesystem")]
pub mod filesystem;
#[cfg(feature = "impulse")]
pub mod impulse;
#[cfg(feature = "kafka")]
pub mod kafka;
#[cfg(feature = "nexmark")]
pub mod nexmark;
#[cfg(feature = "stdout")]
pub mod stdout;

pub use connector::{
    Connector, ConnectorMetadata, DynConnector, Sink, SinkContext, Source, SourceContext,
    TableRole, TestOutcome,
};
pub use error::{ConnectorError, Result};
pub use registry::Registry;
