//! The console: one line per journal entry, through `tracing` (target `wxcc_mock::journal`, with
//! the entry's `seq` and `kind` as fields), so `RUST_LOG`, `--quiet` and `--log-format json` apply
//! as to any other line. Keep-alives log at debug, failures and refusals at warn, the rest at info.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::outputs::journal::{Entry, Journal, Level};

/// The target every journal line is logged under.
pub const TARGET: &str = "wxcc_mock::journal";

/// Logs one entry.
pub fn log(entry: &Entry) {
    let (seq, kind) = (entry.seq, entry.kind.as_str());
    match entry.level {
        Level::Debug => tracing::debug!(target: TARGET, seq, kind, "{}", entry.line),
        Level::Info => tracing::info!(target: TARGET, seq, kind, "{}", entry.line),
        Level::Warn => tracing::warn!(target: TARGET, seq, kind, "{}", entry.line),
    }
}

/// Logs every new journal entry until the journal goes away.
pub fn spawn(journal: &Arc<Journal>) -> tokio::task::JoinHandle<()> {
    let mut live = journal.subscribe();
    tokio::spawn(async move {
        loop {
            match live.recv().await {
                Ok(entry) => log(&entry),
                Err(broadcast::error::RecvError::Lagged(skipped)) => tracing::warn!(
                    target: TARGET,
                    "the console fell behind and skipped {skipped} journal entries (GET /__admin/journal has them)"
                ),
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
    })
}
