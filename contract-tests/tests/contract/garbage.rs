//! Garbage over every route, on a real socket: random bytes, invalid UTF-8, wrong content
//! types, deep and huge JSON, long headers and URIs, odd methods. Never a 5xx, never a panic,
//! always a 4xx (or a success) in the route's envelope with the TrackingID, and the mock keeps
//! answering. Each reply also passes the harness's own checks (the error schema of its path and
//! the diagnostic header).

use proptest::prelude::*;
use serde_json::Value;
use wxcc_contract_tests::TestApp;

use crate::block_on;

/// Kinds of garbage.
#[derive(Debug, Clone)]
enum Garbage {
    /// Random bytes as JSON.
    Bytes(Vec<u8>),
    /// Bytes that are not UTF-8.
    NotUtf8,
    /// A body sent as another media type.
    ContentType(&'static str),
    /// JSON nested `n` deep.
    Deep(usize),
    /// JSON larger than the body limit.
    Huge,
    /// A header of `n` bytes.
    LongHeader(usize),
    /// A path made `n` bytes longer.
    LongUri(usize),
    /// A method nobody serves.
    Method(&'static str),
    /// A path parameter that decodes to invalid UTF-8.
    BadPathParam,
}

fn garbage() -> impl Strategy<Value = Garbage> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512).prop_map(Garbage::Bytes),
        Just(Garbage::NotUtf8),
        prop_oneof![
            Just("text/plain"),
            Just("application/xml"),
            Just("multipart/form-data; boundary=x"),
            Just("application/x-www-form-urlencoded"),
            Just("application/json; charset=latin1"),
        ]
        .prop_map(Garbage::ContentType),
        (64usize..20_000).prop_map(Garbage::Deep),
        Just(Garbage::Huge),
        (1024usize..60_000).prop_map(Garbage::LongHeader),
        (1024usize..60_000).prop_map(Garbage::LongUri),
        prop_oneof![Just("PROPFIND"), Just("TRACE"), Just("OPTIONS"), Just("PATCH"), Just("HEAD"), Just("FOO")]
            .prop_map(Garbage::Method),
        Just(Garbage::BadPathParam),
    ]
}

/// A route of the table with its parameters filled in (`%ff%fe` for a bad one).
fn path_of(template: &str, org: &str, bad: bool) -> String {
    template
        .split('/')
        .map(|segment| match segment {
            "{orgId}" | "{orgid}" if !bad => org.to_owned(),
            s if s.starts_with('{') => {
                if bad {
                    "%ff%fe".to_owned()
                } else {
                    "00000000-0000-4000-8000-000000000000".to_owned()
                }
            }
            s => s.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn throw(app: &TestApp, token: &str, org: &str, route: usize, junk: &Garbage) {
    let routes: Vec<_> = wxcc_mock::routes::endpoints()
        .iter()
        .filter(|e| e.path != "/__admin/journal/stream" && e.path != "/__admin/reset")
        .collect();
    let endpoint = routes[route % routes.len()];
    let mut method = endpoint.method.as_str().to_owned();
    let mut path = path_of(endpoint.path, org, matches!(junk, Garbage::BadPathParam));
    let mut body = b"{}".to_vec();
    let mut content_type = "application/json".to_owned();
    let mut extra: Option<(String, String)> = None;
    match junk {
        Garbage::Bytes(bytes) => body = bytes.clone(),
        Garbage::NotUtf8 => body = vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'],
        Garbage::ContentType(kind) => (*kind).clone_into(&mut content_type),
        Garbage::Deep(n) => body = format!("{}{}", "[".repeat(*n), "]".repeat(*n)).into_bytes(),
        Garbage::Huge => body = format!("{{\"name\":\"{}\"}}", "x".repeat(300 * 1024)).into_bytes(),
        Garbage::LongHeader(n) => extra = Some(("x-garbage".into(), "h".repeat(*n))),
        Garbage::LongUri(n) => path = format!("{path}?pad={}", "u".repeat(*n)),
        Garbage::Method(m) => (*m).clone_into(&mut method),
        Garbage::BadPathParam => {}
    }
    let mut request = app.request(&method, &path).bearer(token).raw(body, &content_type);
    if let Some((name, value)) = &extra {
        request = request.header(name, value);
    }
    // send() checks the TrackingID, the path's error envelope and the diagnostic.
    let reply = request.send().await;
    let what = format!("{method} {} with {junk:.60?}", endpoint.path);
    assert!(reply.status < 500, "{what} -> {}", reply.status);
    if reply.status >= 400 && method != "HEAD" {
        let body: Value = serde_json::from_slice(&reply.raw).unwrap_or_else(|_| panic!("{what}: a JSON error body"));
        assert_eq!(body["trackingId"], reply.tracking_id(), "{what}: the envelope carries the TrackingID");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn garbage_on_any_route_gets_a_4xx_in_the_envelope_and_the_mock_keeps_answering(
        throws in proptest::collection::vec((any::<usize>(), garbage()), 8..16),
    ) {
        block_on(async {
            let app = TestApp::spawn().await;
            let token = app.world_token("admin-full");
            let org = app.org_of("admin@wxcc.example");
            for (route, junk) in &throws {
                throw(&app, &token, &org, *route, junk).await;
            }
            app.get("/__admin/health").send().await.expect(200, None);
        });
    }
}

#[tokio::test]
async fn every_route_survives_every_kind_of_garbage_once() {
    let app = TestApp::spawn().await;
    let token = app.world_token("admin-full");
    let org = app.org_of("admin@wxcc.example");
    let kinds = [
        Garbage::Bytes(vec![0, 159, 146, 150, b'{']),
        Garbage::NotUtf8,
        Garbage::ContentType("text/plain"),
        Garbage::Deep(10_000),
        Garbage::Huge,
        Garbage::LongHeader(32 * 1024),
        Garbage::LongUri(32 * 1024),
        Garbage::Method("PROPFIND"),
        Garbage::BadPathParam,
    ];
    let routes = wxcc_mock::routes::endpoints().len();
    for route in 0..routes {
        for junk in &kinds {
            throw(&app, &token, &org, route, junk).await;
        }
    }
    app.get("/__admin/health").send().await.expect(200, None);
}

/// Sends `path` a request whose body (`size` bytes) the mock will not read in full, waits until
/// the whole body is written (or the write fails), then reads the answer to its end.
async fn unread_body(
    app: &TestApp,
    method: &str,
    path: &str,
    size: usize,
) -> (Result<(), std::io::Error>, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = app.base_url().expect("served on a socket").trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(base).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {size}\r\n\r\n"
    );
    let written = tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(&vec![b' '; size]).await?;
        writer.flush().await?;
        Ok::<_, std::io::Error>(writer)
    })
    .await
    .expect("the writer");
    // Only now read: a mock that closed with the body unread has answered with a reset by now.
    let mut answer = Vec::new();
    let _ = reader.read_to_end(&mut answer).await;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(answer.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    (written.map(drop), head, answer[split..].to_vec())
}

fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().expect("a length"))
        })
        .unwrap_or_else(|| panic!("no content-length in {head}"))
}

#[tokio::test]
async fn a_body_the_route_does_not_read_neither_resets_the_connection_nor_cuts_the_answer_short() {
    let app = TestApp::spawn().await;
    // 4 MiB: far past the 256 KiB a route reads, under the 16 MiB a closing connection drains.
    let (written, head, body) = unread_body(&app, "GET", "/openapi.json", 4 << 20).await;
    written.expect("the mock read the whole body instead of resetting the connection");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert_eq!(body.len(), content_length(&head), "the whole document arrived");
    serde_json::from_slice::<Value>(&body).expect("the document is whole JSON");

    let (written, head, body) = unread_body(&app, "POST", "/v1/subscriptions", 4 << 20).await;
    written.expect("the mock read the whole body instead of resetting the connection");
    assert!(head.starts_with("HTTP/1.1 400 "), "no Authorization header, checked before the body: {head}");
    let error: Value = serde_json::from_slice(&body).expect("the envelope arrived whole");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("trackingid: {}", error["trackingId"].as_str().expect("an id")).to_ascii_lowercase()),
        "{head}"
    );
    app.get("/__admin/health").send().await.expect(200, None);
}
