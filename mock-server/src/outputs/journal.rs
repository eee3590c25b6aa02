//! The journal: the record of everything, in one sequence.
//!
//! Every WxCC HTTP exchange, every websocket frame in and out, every webhook attempt and every
//! domain event is one [`Entry`] with a `seq` (assigned here, so the journal *is* the sequence)
//! and a `kind`. Entries are kept as bytes in one ring buffer with a slot each: no
//! allocation per entry, and nothing to free when the oldest roll out (they are written over).
//! An HTTP exchange arrives as a compact record ([`Fields::Encoded`]) that is copied in as it is
//! and turned into JSON only when someone reads it (by its [`Codec`]); the rarer entries come
//! as JSON ([`Fields::Text`]), made by whoever records them, before the lock. The lock only assigns the number
//! and copies the bytes. The journal is bounded by bytes (entries and slots): the oldest entries
//! go first, and how many went is counted. New entries are also broadcast (only while someone
//! listens), for `GET /__admin/journal/stream` (Server-Sent Events), and handed to the console.

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

/// One entry, as a reader gets it: a copy of what the journal holds, rendered as JSON on demand.
#[derive(Debug, Clone)]
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
    /// The fields after `seq`, `at` and `kind`: JSON object members, or a record its codec reads.
    payload: Box<[u8]>,
    codec: Option<&'static Codec>,
}

/// An entry's fields, as a producer hands them over.
#[derive(Debug)]
pub enum Fields {
    /// JSON object members, without braces.
    Text(String),
    /// A compact record, copied into the journal as it is and read back by its codec: what an
    /// HTTP exchange is recorded as, so that recording one costs a copy and no JSON.
    Encoded {
        /// The record.
        bytes: Vec<u8>,
        /// How it is read.
        codec: &'static Codec,
    },
}

/// How a producer's compact record (see [`Fields::Encoded`]) is read back.
#[derive(Debug)]
pub struct Codec {
    /// Appends the record's fields as JSON object members (no braces, no leading comma).
    pub render: fn(&[u8], &mut String),
    /// The bearer token the record's request carried (never shown: a bundle turns it into a
    /// world token's name).
    pub bearer: fn(&[u8]) -> Option<&str>,
}

impl Entry {
    /// The entry as one JSON object.
    pub fn json(&self) -> String {
        let mut text = String::with_capacity(self.payload.len() * 2 + 64);
        text.push_str("{\"seq\":");
        text.push_str(&self.seq.to_string());
        text.push_str(",\"at\":");
        text.push_str(&self.at.to_string());
        text.push_str(",\"kind\":\"");
        text.push_str(self.kind.as_str());
        text.push('"');
        match self.codec {
            None if self.payload.is_empty() => {}
            None => {
                text.push(',');
                text.push_str(std::str::from_utf8(&self.payload).unwrap_or_default());
            }
            Some(codec) => {
                text.push(',');
                (codec.render)(&self.payload, &mut text);
            }
        }
        text.push('}');
        text
    }

    /// The bearer token an HTTP exchange carried (never to be shown: a bundle turns it into a
    /// world token's name).
    pub fn bearer(&self) -> Option<&str> {
        self.codec.and_then(|codec| (codec.bearer)(&self.payload))
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
    /// The fields (see [`members`] for serialising a struct).
    pub fields: Fields,
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
    push_cut_body(out, name, bytes, bytes.len(), trusted);
}

/// [`push_body`] for a body of which the record kept only the first `bytes` (at least
/// [`MAX_BODY_BYTES`] of them when it was cut) of `whole` bytes.
pub fn push_cut_body(out: &mut String, name: &str, bytes: &[u8], whole: usize, trusted: bool) {
    if bytes.is_empty() {
        return;
    }
    out.push_str(",\"");
    out.push_str(name);
    out.push_str("\":");
    if whole > MAX_BODY_BYTES || bytes.len() > MAX_BODY_BYTES {
        let cut = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_BODY_BYTES)]);
        let text = format!("{cut}… [cut: {} bytes in all]", whole.max(bytes.len()));
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

/// Where an entry's bytes (its console line, then its payload) are kept.
#[derive(Debug)]
enum Place {
    /// In the ring, from this absolute offset (see [`Ring::head`]).
    Ring(u64),
    /// On its own: an entry longer than the whole ring (it is then the only one kept).
    Owned(Box<[u8]>),
}

/// One entry's place in the journal: what it is, and where its bytes are.
#[derive(Debug)]
struct Slot {
    seq: u64,
    at: i64,
    kind: Kind,
    level: Level,
    codec: Option<&'static Codec>,
    place: Place,
    line_len: u32,
    len: u32,
}

/// What a slot costs beside its bytes (counted against the bound).
const SLOT_BYTES: usize = std::mem::size_of::<Slot>();

/// The entries: their bytes in one ring buffer (no allocation per entry, nothing to free when the
/// oldest roll out: they are written over) and a slot per entry, oldest first.
#[derive(Debug)]
struct Ring {
    slots: VecDeque<Slot>,
    /// Grows up to `capacity` as entries come, then is written over from the start.
    buffer: Vec<u8>,
    /// The bound (`--journal-bytes`): on the entries' bytes and slots, and the buffer's size.
    capacity: usize,
    /// Absolute offsets (they only grow; the place in `buffer` is the offset modulo
    /// `capacity`): where the next entry goes, and where the oldest bytes still kept begin.
    head: u64,
    tail: u64,
    /// Bytes held (entries' bytes and their slots).
    bytes: usize,
    next_seq: u64,
    evicted: u64,
}

impl Ring {
    fn new(capacity: usize) -> Ring {
        Ring {
            slots: VecDeque::new(),
            buffer: Vec::new(),
            capacity,
            head: 0,
            tail: 0,
            bytes: 0,
            next_seq: 1,
            evicted: 0,
        }
    }

    fn cost(slot: &Slot) -> usize {
        slot.len as usize + SLOT_BYTES
    }

    /// Where an entry of `len` bytes would start in the ring: at the head, or at the ring's start
    /// if it does not fit before the end.
    fn start_for(&self, len: usize) -> u64 {
        let ring = self.capacity as u64;
        let offset = self.head % ring;
        if offset + len as u64 > ring { self.head + (ring - offset) } else { self.head }
    }

    /// Rolls out the oldest entry; whether there was one.
    fn evict_oldest(&mut self) -> bool {
        let Some(old) = self.slots.pop_front() else { return false };
        self.bytes -= Ring::cost(&old);
        if let Place::Ring(start) = old.place {
            self.tail = start + u64::from(old.len);
        }
        self.evicted += 1;
        true
    }

    /// Copies `parts` into the ring at `start` (which [`Ring::start_for`] gave, with the room
    /// made), and moves the head past them.
    fn write(&mut self, start: u64, parts: [&[u8]; 2]) {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let at = usize::try_from(start % self.capacity as u64).unwrap_or_default();
        if self.buffer.len() < at + len {
            self.buffer.resize(at + len, 0);
        }
        let mut at = at;
        for part in parts {
            self.buffer[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        self.head = start + len as u64;
    }

    fn bytes_of<'a>(&'a self, slot: &'a Slot) -> &'a [u8] {
        match &slot.place {
            Place::Ring(start) => {
                let at = usize::try_from(start % self.capacity as u64).unwrap_or_default();
                self.buffer.get(at..at + slot.len as usize).unwrap_or_default()
            }
            Place::Owned(bytes) => bytes,
        }
    }

    fn entry(&self, slot: &Slot) -> Entry {
        let bytes = self.bytes_of(slot);
        let (line, payload) = bytes.split_at((slot.line_len as usize).min(bytes.len()));
        Entry {
            seq: slot.seq,
            at: slot.at,
            kind: slot.kind,
            line: String::from_utf8_lossy(line).into_owned(),
            level: slot.level,
            payload: payload.into(),
            codec: slot.codec,
        }
    }
}

/// Where the console gets its lines: called for each entry, after the lock is released.
pub type Sink = Box<dyn Fn(&Line<'_>) + Send + Sync>;

/// An entry as the console sees it.
#[derive(Debug)]
pub struct Line<'a> {
    /// Its place in the sequence.
    pub seq: u64,
    /// What it records.
    pub kind: Kind,
    /// How the console shows it.
    pub level: Level,
    /// The line.
    pub text: &'a str,
}

/// The journal. Cheap to share (`Arc`), every method short.
pub struct Journal {
    ring: Mutex<Ring>,
    live: broadcast::Sender<Arc<Entry>>,
    sink: std::sync::OnceLock<Sink>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
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
    /// An empty journal holding at most `capacity_bytes` (entries and their slots; the ring that
    /// holds the entries' bytes grows to that size as they come, and no further).
    pub fn new(capacity_bytes: usize) -> Journal {
        let (live, _) = broadcast::channel(4096);
        Journal { ring: Mutex::new(Ring::new(capacity_bytes.max(1024))), live, sink: std::sync::OnceLock::new() }
    }

    /// Hands every entry from now on to `sink` too (the console); only the first call counts.
    pub fn set_sink(&self, sink: Sink) {
        let _ = self.sink.set(sink);
    }

    /// Numbers and appends an entry (rolling out the oldest past the bound), broadcasts it, and
    /// answers its seq.
    pub fn append(&self, draft: Draft) -> u64 {
        let Draft { at, kind, line, level, fields } = draft;
        let (payload, codec) = match &fields {
            Fields::Text(text) => (text.as_bytes(), None),
            Fields::Encoded { bytes, codec } => (bytes.as_slice(), Some(*codec)),
        };
        let len = line.len() + payload.len();
        let (Ok(len32), Ok(line_len)) = (u32::try_from(len), u32::try_from(line.len())) else {
            // Over 4 GiB: no request, frame or attempt comes near (bodies are bounded far lower).
            tracing::warn!("a journal entry of {len} bytes was not recorded: longer than an entry can be");
            return 0;
        };
        let shown = self.sink.get();
        let cost = len + SLOT_BYTES;
        let mut ring = lock(&self.ring);
        let seq = ring.next_seq;
        ring.next_seq += 1;
        let first_eviction = ring.evicted == 0;
        let capacity = ring.capacity;
        // Checked under the lock: a reader that subscribes and then reads the backlog misses
        // nothing (an entry is either in its backlog or sent to it).
        let watched = self.live.receiver_count() > 0;
        let place = if len > capacity {
            // Longer than the ring: kept on its own, as the only entry.
            while ring.evict_oldest() {}
            let mut own = Vec::with_capacity(len);
            own.extend_from_slice(line.as_bytes());
            own.extend_from_slice(payload);
            Place::Owned(own.into_boxed_slice())
        } else {
            let mut start = ring.start_for(len);
            // Room by the bound (bytes and slots), and in the ring (bytes not yet rolled out).
            while ring.bytes + cost > capacity || start + len as u64 > ring.tail + capacity as u64 {
                if !ring.evict_oldest() {
                    // Nothing left to roll out: the ring is free from here.
                    ring.tail = start;
                    break;
                }
                start = ring.start_for(len);
            }
            if ring.slots.is_empty() {
                ring.tail = start;
            }
            ring.write(start, [line.as_bytes(), payload]);
            Place::Ring(start)
        };
        let first_eviction = first_eviction && ring.evicted > 0;
        ring.bytes += cost;
        ring.slots.push_back(Slot { seq, at, kind, level, codec, place, line_len, len: len32 });
        // Sent under the lock, so subscribers see the entries in seq order (and only when there
        // are any: an unwatched journal makes no copy).
        if watched {
            let entry = Entry { seq, at, kind, line: line.clone(), level, payload: payload.into(), codec };
            let _ = self.live.send(Arc::new(entry));
        }
        drop(ring);
        // A producer leaves the line empty when the console would not print it (`wants_line`).
        if let Some(sink) = shown
            && !line.is_empty()
        {
            sink(&Line { seq, kind, level, text: &line });
        }
        if first_eviction {
            tracing::info!(
                "the journal reached its bound of {capacity} bytes: the oldest entries now roll out (GET /__admin/journal counts them as evicted)"
            );
        }
        seq
    }

    /// Entries after `since` (oldest first, at most `limit`), or without `since` the newest
    /// `limit`; only of `kind` when given.
    pub fn query(&self, since: Option<u64>, kind: Option<Kind>, limit: usize) -> Page {
        let ring = lock(&self.ring);
        let matches = |s: &&Slot| kind.is_none_or(|k| s.kind == k);
        let entries: Vec<Arc<Entry>> = match since {
            Some(since) => {
                let start = ring.slots.partition_point(|s| s.seq <= since);
                ring.slots.range(start..).filter(matches).take(limit).map(|s| Arc::new(ring.entry(s))).collect()
            }
            None => {
                let mut newest: Vec<Arc<Entry>> =
                    ring.slots.iter().rev().filter(matches).take(limit).map(|s| Arc::new(ring.entry(s))).collect();
                newest.reverse();
                newest
            }
        };
        Page {
            entries,
            last_seq: ring.next_seq - 1,
            evicted: ring.evicted,
            used_bytes: ring.bytes,
            capacity_bytes: ring.capacity,
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
        ring.slots.clear();
        ring.bytes = 0;
        ring.tail = ring.head;
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
            fields: Fields::Text(members(&serde_json::json!({ "text": text }))),
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
        assert_eq!((first, second), (1, 2));
        let page = journal.query(Some(1), None, 1);
        let parsed: serde_json::Value = serde_json::from_str(&page.entries[0].json()).expect("json");
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

    #[test]
    fn entries_of_every_size_read_back_intact_while_the_ring_wraps_many_times() {
        let journal = Journal::new(8192);
        let mut expected = std::collections::BTreeMap::new();
        for i in 0..2000_usize {
            // Sizes that do not divide the ring, so entries straddle its end and pad to its start.
            let text = format!("{i}:{}", "abcdefghij".repeat(i * 7 % 97));
            let seq = journal.append(draft(Kind::Ws, &text));
            expected.insert(seq, text);
            let page = journal.query(None, None, usize::MAX);
            assert!(page.used_bytes <= 8192, "{}", page.used_bytes);
        }
        let page = journal.query(None, None, usize::MAX);
        assert!(page.evicted > 1000 && page.entries.len() > 3, "{} kept, {} evicted", page.entries.len(), page.evicted);
        assert_eq!(page.evicted as usize + page.entries.len(), 2000);
        let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, ((2001 - seqs.len() as u64)..=2000).collect::<Vec<_>>(), "the newest, in order, without gaps");
        for entry in &page.entries {
            assert_eq!(entry.line, expected[&entry.seq]);
            let parsed: serde_json::Value = serde_json::from_str(&entry.json()).expect("json");
            assert_eq!(parsed["text"], expected[&entry.seq].as_str());
        }
    }

    #[test]
    fn an_entry_longer_than_the_whole_journal_is_kept_alone_until_the_next() {
        let journal = Journal::new(2048);
        journal.append(draft(Kind::Event, "small"));
        let huge = "y".repeat(5000);
        let seq = journal.append(draft(Kind::Event, &huge));
        let page = journal.query(None, None, usize::MAX);
        assert_eq!(page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![seq], "the newest stays");
        assert_eq!(page.entries[0].line, huge);
        journal.append(draft(Kind::Event, "after"));
        let page = journal.query(None, None, usize::MAX);
        assert_eq!(page.entries.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(), vec!["after"]);
        assert_eq!(page.evicted, 2);
        assert!(page.used_bytes <= 2048);
    }

    #[test]
    fn a_slot_costs_what_the_readme_says() {
        assert_eq!(SLOT_BYTES, 56, "README: a slot of 56 bytes per entry");
    }

    #[test]
    fn a_cleared_journal_keeps_numbering_and_fills_again() {
        let journal = Journal::new(4096);
        for i in 0..30 {
            journal.append(draft(Kind::Http, &format!("{i}{}", "z".repeat(100))));
        }
        journal.clear();
        assert!(journal.query(None, None, usize::MAX).entries.is_empty());
        assert_eq!(journal.append(draft(Kind::Http, "next")), 31);
        let page = journal.query(None, None, usize::MAX);
        assert_eq!(page.entries.iter().map(|e| (e.seq, e.line.as_str())).collect::<Vec<_>>(), vec![(31, "next")]);
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
