//! The journal: the record of everything, in one sequence.
//!
//! Every WxCC HTTP exchange, every websocket frame in and out, every webhook attempt and every
//! domain event is one [`Entry`] with a `seq` (assigned here, so the journal *is* the sequence)
//! and a `kind`. The lock only assigns the number and appends. An HTTP exchange is kept as it
//! was (its bodies are the request's and response's own `Bytes`, not copies) and rendered as
//! JSON only when someone reads it, outside the lock ([`Render`]); the rarer entries are
//! serialised by whoever records them, before the lock. The journal is bounded by bytes: the
//! oldest entries go first, and how many went is counted. New entries are also broadcast, for
//! `GET /__admin/journal/stream` (Server-Sent Events) and the console.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::broadcast;

/// The journal's default size, 16 MiB (`--journal-bytes`).
pub const DEFAULT_JOURNAL_BYTES: usize = 16 * 1024 * 1024;

/// The largest body kept in an entry; longer ones are cut (and say so).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A WxCC HTTP exchange.
    Http,
    /// A websocket frame, in or out.
    Ws,
    /// A webhook delivery attempt (or a drop).
    Webhook,
    /// A domain event (an agent transition, a subscription change, ...).
    Event,
}

impl Kind {
    /// Every kind, for messages.
    pub const ALL: [Kind; 4] = [Kind::Http, Kind::Ws, Kind::Webhook, Kind::Event];

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Ws => "ws",
            Kind::Webhook => "webhook",
            Kind::Event => "event",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// How serious an entry is, for the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Routine (keep-alives): shown at debug level.
    Debug,
    /// What happened.
    Info,
    /// Something failed or was refused.
    Warn,
}

/// One entry.
#[derive(Debug)]
pub struct Entry {
    /// Its place in the one sequence.
    pub seq: u64,
    /// Epoch ms, from the mock's clock.
    pub at: i64,
    /// What it records.
    pub kind: Kind,
    /// One line for the console (`POST /v1/subscriptions 403 NOTIFS_… agent1@…: …`).
    pub line: String,
    /// How the console shows it.
    pub level: Level,
    /// The entry's fields after `seq`, `at` and `kind`.
    fields: Fields,
    /// About how many bytes it holds (worked out once, before the journal's lock).
    size: usize,
}

/// An entry's fields: serialised already, or rendered when read.
#[derive(Debug)]
pub enum Fields {
    /// JSON object members, without braces.
    Text(Box<str>),
    /// Kept as recorded; rendered on demand.
    Lazy(Box<dyn Render>),
}

/// Something the journal renders only when it is read.
pub trait Render: Send + Sync + std::fmt::Debug {
    /// Appends the fields as JSON object members (no braces, no leading comma).
    fn write_fields(&self, out: &mut String);
    /// About how many bytes it holds.
    fn size(&self) -> usize;
    /// The bearer token the request carried, for a bundle to name the world token it was
    /// (never shown).
    fn bearer(&self) -> Option<&str> {
        None
    }
}

impl Entry {
    /// The entry as one JSON object.
    pub fn json(&self) -> String {
        let mut text = String::with_capacity(self.size() + 64);
        text.push_str("{\"seq\":");
        text.push_str(&self.seq.to_string());
        text.push_str(",\"at\":");
        text.push_str(&self.at.to_string());
        text.push_str(",\"kind\":\"");
        text.push_str(self.kind.as_str());
        text.push('"');
        match &self.fields {
            Fields::Text(fields) if fields.is_empty() => {}
            Fields::Text(fields) => {
                text.push(',');
                text.push_str(fields);
            }
            Fields::Lazy(render) => {
                text.push(',');
                render.write_fields(&mut text);
            }
        }
        text.push('}');
        text
    }

    fn size(&self) -> usize {
        self.size
    }

    /// The bearer token an HTTP exchange carried (never to be shown: a bundle turns it into a
    /// world token's name).
    pub fn bearer(&self) -> Option<&str> {
        match &self.fields {
            Fields::Lazy(render) => render.bearer(),
            Fields::Text(_) => None,
        }
    }
}

/// What an entry is made of before it gets its number.
#[derive(Debug)]
pub struct Draft {
    /// Epoch ms.
    pub at: i64,
    /// Kind.
    pub kind: Kind,
    /// Console line.
    pub line: String,
    /// Console level.
    pub level: Level,
    /// The fields (see [`fields`] for serialising a struct).
    pub fields: Fields,
}

/// Serialises `value` (a struct) into object members without the braces, for [`Draft::fields`].
pub fn fields<T: Serialize>(value: &T) -> Fields {
    Fields::Text(members(value).into_boxed_str())
}

/// Serialises `value` (a struct) into object members without the braces.
pub fn members<T: Serialize>(value: &T) -> String {
    let mut bytes = Vec::with_capacity(512);
    if serde_json::to_writer(&mut bytes, value).is_err() {
        return String::new();
    }
    let mut text = String::from_utf8(bytes).unwrap_or_default();
    if text.starts_with('{') && text.ends_with('}') {
        text.pop();
        text.drain(..1);
        text
    } else {
        String::new()
    }
}

/// Whether the console would print a line of `level` (so a producer can skip making one).
pub fn wants_line(level: Level) -> bool {
    match level {
        Level::Debug => tracing::enabled!(target: "wxcc_mock::journal", tracing::Level::DEBUG),
        Level::Info => tracing::enabled!(target: "wxcc_mock::journal", tracing::Level::INFO),
        Level::Warn => tracing::enabled!(target: "wxcc_mock::journal", tracing::Level::WARN),
    }
}

/// Appends `"name":` and then a body to a fields string: JSON bodies as they are (validated,
/// unless `trusted` says the mock made them), anything else as a JSON string, cut at
/// [`MAX_BODY_BYTES`]. Nothing is appended for an empty body.
pub fn push_body(out: &mut String, name: &str, bytes: &[u8], trusted: bool) {
    if bytes.is_empty() {
        return;
    }
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    if bytes.len() > MAX_BODY_BYTES {
        let cut = String::from_utf8_lossy(&bytes[..MAX_BODY_BYTES]);
        let text = format!("{cut}… [cut: {} bytes in all]", bytes.len());
        out.push_str(&serde_json::to_string(&text).unwrap_or_default());
        return;
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if trusted || (shallow(text) && serde_json::from_str::<&RawValue>(text).is_ok()) => {
            out.push_str(text.trim());
        }
        Ok(text) => out.push_str(&serde_json::to_string(text).unwrap_or_default()),
        Err(_) => out.push_str(&serde_json::to_string(&String::from_utf8_lossy(bytes)).unwrap_or_default()),
    }
}

/// The deepest nesting a body may have to be embedded as JSON: deeper documents are kept as
/// text, so that every reader's parser (serde's stops at 128) can read the journal.
const MAX_EMBEDDED_DEPTH: usize = 64;

/// Whether JSON text nests no deeper than [`MAX_EMBEDDED_DEPTH`] (strings are skipped).
fn shallow(text: &str) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_EMBEDDED_DEPTH {
                    return false;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    true
}

/// A body as an entry shows it: JSON as JSON, anything else as text, cut at [`MAX_BODY_BYTES`].
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum BodyView {
    /// A JSON document, embedded as it is.
    Json(Box<RawValue>),
    /// Text (or what could be read of it).
    Text(String),
}

impl BodyView {
    /// The view of `bytes`; `None` for an empty body.
    pub fn of(bytes: &[u8]) -> Option<BodyView> {
        if bytes.is_empty() {
            return None;
        }
        if bytes.len() > MAX_BODY_BYTES {
            let cut = String::from_utf8_lossy(&bytes[..MAX_BODY_BYTES]);
            return Some(BodyView::Text(format!("{cut}… [cut: {} bytes in all]", bytes.len())));
        }
        let text = String::from_utf8_lossy(bytes).into_owned();
        if !shallow(&text) {
            return Some(BodyView::Text(text));
        }
        match RawValue::from_string(text) {
            Ok(raw) => Some(BodyView::Json(raw)),
            Err(_) => Some(BodyView::Text(String::from_utf8_lossy(bytes).into_owned())),
        }
    }
}

#[derive(Debug)]
struct Ring {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
    next_seq: u64,
    evicted: u64,
}

/// Where the console gets its lines: called for each entry, after the lock is released.
pub type Sink = Box<dyn Fn(&Entry) + Send + Sync>;

/// The journal. Cheap to share (`Arc`), every method short.
pub struct Journal {
    ring: Mutex<Ring>,
    capacity_bytes: usize,
    live: broadcast::Sender<Arc<Entry>>,
    sink: std::sync::OnceLock<Sink>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").field("capacity_bytes", &self.capacity_bytes).finish_non_exhaustive()
    }
}

/// A page of the journal, oldest first.
#[derive(Debug)]
pub struct Page {
    /// The entries.
    pub entries: Vec<Arc<Entry>>,
    /// The newest seq recorded so far (0 before anything).
    pub last_seq: u64,
    /// Entries that rolled out so far.
    pub evicted: u64,
    /// Bytes held now.
    pub used_bytes: usize,
    /// The bound.
    pub capacity_bytes: usize,
}

impl Page {
    /// The page as the admin API sends it.
    pub fn json(&self) -> String {
        let mut text = String::from("{\"entries\":[");
        for (i, entry) in self.entries.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&entry.json());
        }
        text.push_str(&format!(
            "],\"lastSeq\":{},\"evicted\":{},\"usedBytes\":{},\"capacityBytes\":{}}}",
            self.last_seq, self.evicted, self.used_bytes, self.capacity_bytes
        ));
        text
    }
}

fn lock(m: &Mutex<Ring>) -> std::sync::MutexGuard<'_, Ring> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Journal {
    /// An empty journal holding at most `capacity_bytes`.
    pub fn new(capacity_bytes: usize) -> Journal {
        let (live, _) = broadcast::channel(4096);
        Journal {
            ring: Mutex::new(Ring { entries: VecDeque::new(), bytes: 0, next_seq: 1, evicted: 0 }),
            capacity_bytes: capacity_bytes.max(1024),
            live,
            sink: std::sync::OnceLock::new(),
        }
    }

    /// Hands every entry from now on to `sink` too (the console); only the first call counts.
    pub fn set_sink(&self, sink: Sink) {
        let _ = self.sink.set(sink);
    }

    /// Numbers and appends an entry (evicting the oldest past the bound) and broadcasts it.
    pub fn append(&self, draft: Draft) -> Arc<Entry> {
        let fields = match &draft.fields {
            Fields::Text(text) => text.len() + 16,
            Fields::Lazy(render) => render.size(),
        };
        // The entry itself behind its Arc, its line, and the allocator's overhead.
        let size = fields + draft.line.capacity() + std::mem::size_of::<Entry>() + 64;
        let mut ring = lock(&self.ring);
        let entry = Arc::new(Entry {
            seq: ring.next_seq,
            at: draft.at,
            kind: draft.kind,
            line: draft.line,
            level: draft.level,
            fields: draft.fields,
            size,
        });
        ring.next_seq += 1;
        ring.bytes += entry.size();
        ring.entries.push_back(entry.clone());
        let mut first_eviction = false;
        // Evicted entries are freed after the lock is let go (an exchange is several blocks).
        // Usually one goes per one that comes: that one needs no list.
        let (mut evicted, mut more_evicted) = (None, Vec::new());
        while ring.bytes > self.capacity_bytes && ring.entries.len() > 1 {
            if let Some(old) = ring.entries.pop_front() {
                ring.bytes -= old.size();
                first_eviction |= ring.evicted == 0;
                ring.evicted += 1;
                match evicted {
                    None => evicted = Some(old),
                    Some(_) => more_evicted.push(old),
                }
            }
        }
        // Sent under the lock, so subscribers see the entries in seq order (and only when there
        // are any: an unwatched journal wakes nobody).
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(entry.clone());
        }
        drop(ring);
        drop(evicted);
        drop(more_evicted);
        if let Some(sink) = self.sink.get() {
            sink(&entry);
        }
        if first_eviction {
            tracing::info!(
                "the journal reached its bound of {} bytes: the oldest entries now roll out (GET /__admin/journal counts them as evicted)",
                self.capacity_bytes
            );
        }
        entry
    }

    /// Entries after `since` (oldest first, at most `limit`), or without `since` the newest
    /// `limit`; only of `kind` when given.
    pub fn query(&self, since: Option<u64>, kind: Option<Kind>, limit: usize) -> Page {
        let ring = lock(&self.ring);
        let matches = |e: &&Arc<Entry>| kind.is_none_or(|k| e.kind == k);
        let entries: Vec<Arc<Entry>> = match since {
            Some(since) => {
                let start = ring.entries.partition_point(|e| e.seq <= since);
                ring.entries.range(start..).filter(matches).take(limit).cloned().collect()
            }
            None => {
                let mut newest: Vec<Arc<Entry>> =
                    ring.entries.iter().rev().filter(matches).take(limit).cloned().collect();
                newest.reverse();
                newest
            }
        };
        Page {
            entries,
            last_seq: ring.next_seq - 1,
            evicted: ring.evicted,
            used_bytes: ring.bytes,
            capacity_bytes: self.capacity_bytes,
        }
    }

    /// New entries as they are appended.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Entry>> {
        self.live.subscribe()
    }

    /// The newest seq so far.
    pub fn last_seq(&self) -> u64 {
        lock(&self.ring).next_seq - 1
    }

    /// Forgets every entry (the numbering goes on, so readers never see a seq twice).
    pub fn clear(&self) {
        let mut ring = lock(&self.ring);
        ring.entries.clear();
        ring.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(kind: Kind, text: &str) -> Draft {
        Draft {
            at: 7,
            kind,
            line: text.to_owned(),
            level: Level::Info,
            fields: fields(&serde_json::json!({ "text": text })),
        }
    }

    #[test]
    fn a_body_nested_deeper_than_readers_parse_is_kept_as_text() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let mut out = String::from("{\"x\":1");
        push_body(&mut out, "requestBody", deep.as_bytes(), false);
        out.push('}');
        let read: serde_json::Value = serde_json::from_str(&out).expect("a reader can parse it");
        assert_eq!(read["requestBody"], deep.as_str());
        assert!(shallow(r#"{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"]"}"#));
        assert!(matches!(BodyView::of(deep.as_bytes()), Some(BodyView::Text(_))));
    }

    #[test]
    fn entries_are_numbered_in_order_and_render_as_one_object() {
        let journal = Journal::new(DEFAULT_JOURNAL_BYTES);
        let first = journal.append(draft(Kind::Http, "a"));
        let second = journal.append(draft(Kind::Ws, "b"));
        assert_eq!((first.seq, second.seq), (1, 2));
        let parsed: serde_json::Value = serde_json::from_str(&second.json()).expect("json");
        assert_eq!(parsed, serde_json::json!({"seq": 2, "at": 7, "kind": "ws", "text": "b"}));
    }

    #[test]
    fn queries_page_forward_from_a_seq_or_take_the_newest_and_filter_by_kind() {
        let journal = Journal::new(DEFAULT_JOURNAL_BYTES);
        for (i, kind) in [Kind::Http, Kind::Ws, Kind::Http, Kind::Webhook, Kind::Http].into_iter().enumerate() {
            journal.append(draft(kind, &i.to_string()));
        }
        let seqs = |p: Page| p.entries.iter().map(|e| e.seq).collect::<Vec<_>>();
        assert_eq!(seqs(journal.query(Some(2), None, 2)), vec![3, 4]);
        assert_eq!(seqs(journal.query(None, None, 2)), vec![4, 5]);
        assert_eq!(seqs(journal.query(None, Some(Kind::Http), 10)), vec![1, 3, 5]);
        assert_eq!(seqs(journal.query(Some(5), None, 10)), Vec::<u64>::new());
        let page: serde_json::Value = serde_json::from_str(&journal.query(None, None, 1).json()).expect("json");
        assert_eq!(page["lastSeq"], 5);
        assert_eq!(page["entries"][0]["seq"], 5);
    }

    #[test]
    fn the_journal_is_bounded_by_bytes_and_counts_what_rolled_out() {
        let journal = Journal::new(4096);
        let big = "x".repeat(1000);
        for _ in 0..20 {
            journal.append(draft(Kind::Event, &big));
        }
        let page = journal.query(None, None, usize::MAX);
        assert!(page.used_bytes <= 4096, "{}", page.used_bytes);
        assert!(page.entries.len() < 20 && !page.entries.is_empty());
        assert_eq!(page.evicted as usize + page.entries.len(), 20);
        assert_eq!(page.entries.last().map(|e| e.seq), Some(20), "the newest stay");
    }

    #[tokio::test]
    async fn subscribers_see_new_entries_in_order() {
        let journal = Journal::new(DEFAULT_JOURNAL_BYTES);
        let mut live = journal.subscribe();
        journal.append(draft(Kind::Http, "a"));
        journal.append(draft(Kind::Http, "b"));
        assert_eq!(live.recv().await.map(|e| e.seq).ok(), Some(1));
        assert_eq!(live.recv().await.map(|e| e.seq).ok(), Some(2));
    }
}
