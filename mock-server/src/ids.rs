//! Ids: random UUIDs from a fast per-thread generator (seeded once from the OS), so making
//! TrackingIDs and event ids costs no system call per request. Ids are the one thing the mock
//! makes randomly without a seed: nothing depends on their values.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let random = uuid::Uuid::new_v4().as_u64_pair();
    random.0 ^ random.1.rotate_left(17) | 1
}

/// splitmix64: fast, and good enough for identifiers.
fn next() -> u64 {
    STATE.with(|state| {
        let mut z = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

fn random() -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&next().to_le_bytes());
    bytes[8..].copy_from_slice(&next().to_le_bytes());
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// A random (version 4) UUID, hyphenated.
pub fn uuid() -> String {
    random().hyphenated().to_string()
}

/// `<prefix>_<uuid>` (a TrackingID), made in one allocation: the prefix and the UUID are pushed
/// as the text they are, with no UTF-8 check of a buffer.
pub fn prefixed(prefix: &str) -> String {
    let mut id = String::with_capacity(prefix.len() + 1 + uuid::fmt::Hyphenated::LENGTH);
    id.push_str(prefix);
    id.push('_');
    id.push_str(random().hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()));
    id
}

/// A random (version 4) UUID, without hyphens.
pub fn simple() -> String {
    uuid().replace('-', "")
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_version_4_uuids_and_differ() {
        let a = super::uuid();
        let b = super::uuid();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a).expect("a uuid");
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(super::simple().len(), 32);
        let tracking = super::prefixed("NOTIFS");
        assert!(tracking.starts_with("NOTIFS_") && uuid::Uuid::parse_str(&tracking[7..]).is_ok(), "{tracking}");
        let long = "P".repeat(70);
        let tracking = super::prefixed(&long);
        assert!(
            tracking.starts_with(&format!("{long}_")) && uuid::Uuid::parse_str(&tracking[71..]).is_ok(),
            "{tracking}"
        );
    }
}
