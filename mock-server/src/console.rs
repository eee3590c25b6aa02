//! The console: one line per journal entry, through `tracing` (target `wxcc_mock::journal`), so
//! `RUST_LOG`, `--quiet` and `--log-format json` apply as to any other line. JSON lines also
//! carry the entry's `seq` and `kind` as fields. Keep-alives log at debug, failures and
//! refusals at warn, the rest at info.

use crate::outputs::journal::{Journal, Level, Line};

/// The target every journal line is logged under.
pub const TARGET: &str = "wxcc_mock::journal";

/// Logs one entry; `structured` adds its `seq` and `kind` as fields (for JSON lines).
pub fn log(entry: &Line<'_>, structured: bool) {
    let (seq, kind) = (entry.seq, entry.kind.as_str());
    match (entry.level, structured) {
        (Level::Debug, true) => tracing::debug!(target: TARGET, seq, kind, "{}", entry.text),
        (Level::Info, true) => tracing::info!(target: TARGET, seq, kind, "{}", entry.text),
        (Level::Warn, true) => tracing::warn!(target: TARGET, seq, kind, "{}", entry.text),
        (Level::Debug, false) => tracing::debug!(target: TARGET, "{}", entry.text),
        (Level::Info, false) => tracing::info!(target: TARGET, "{}", entry.text),
        (Level::Warn, false) => tracing::warn!(target: TARGET, "{}", entry.text),
    }
}

/// Logs every journal entry from now on (synchronously, as it is appended: no task to wake).
pub fn attach(journal: &Journal, structured: bool) {
    journal.set_sink(Box::new(move |entry| log(entry, structured)));
}
