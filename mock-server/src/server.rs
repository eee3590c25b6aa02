//! The accept loop: HTTP/1.1 with websocket upgrades, a header-read timeout (a client that opens
//! a connection and dribbles or never sends its headers is cut off), and a cap on concurrent
//! connections. At the cap, a new client is answered at once with 503 (`Retry-After: 1`, in the
//! WxCC envelope with a TrackingID) and closed, rather than left waiting; the console says when
//! the cap starts and stops biting, and how many it turned away. Shutdown stops accepting and lets
//! open exchanges finish.
//!
//! A connection closes lingering (RFC 9112 §9.6): the mock stops writing, then reads and discards
//! what the client is still sending (a body it never read, say) until the client closes, for at
//! most [`LINGER_TIME`] and [`LINGER_BYTES`]. Closing at once with unread bytes makes the kernel
//! answer with a reset, which can erase the last response before the client has read it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How the listener protects itself (`--max-connections`, `--header-read-timeout-ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once; past it, new ones get 503 and are closed.
    pub max_connections: usize,
    /// How long a client has to send a request's headers (real time).
    pub header_read_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits { max_connections: 1000, header_read_timeout: Duration::from_secs(10) }
    }
}

/// What a request may ask of the connection it came on (an injected fault): the accept loop
/// serves each connection within its own, which a request's handling reads with
/// [`ConnectionControl::current`] (rather than one put into every request's extensions).
#[derive(Debug, Clone, Default)]
pub struct ConnectionControl(Arc<std::sync::atomic::AtomicU8>);

tokio::task_local! {
    static CONNECTION: ConnectionControl;
}

const KEEP: u8 = 0;
const RESET: u8 = 1;
const SILENT_CLOSE: u8 = 2;

impl ConnectionControl {
    /// Answer nothing: reset the connection (TCP RST) when the answer would be written.
    pub fn reset(&self) {
        self.0.store(RESET, Ordering::SeqCst);
    }

    /// Answer nothing: close the connection without a byte when the answer would be written.
    pub fn close_silently(&self) {
        self.0.store(SILENT_CLOSE, Ordering::SeqCst);
    }

    /// The control of the connection whose request is being handled (`None` for a request
    /// served in process, with no socket).
    pub fn current() -> Option<ConnectionControl> {
        CONNECTION.try_with(ConnectionControl::clone).ok()
    }

    fn wanted(&self) -> u8 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A stream whose socket can be reset.
trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    fn tcp(&self) -> &TcpStream;
}

impl Socket for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Socket for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// How long a closing connection keeps reading what its client still sends (real time).
pub const LINGER_TIME: Duration = Duration::from_secs(5);

/// How much a closing connection reads and discards before it closes regardless.
pub const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// What the listener turned away, for the console and tests.
#[derive(Debug, Default)]
pub struct ListenerCounts {
    /// Connections answered 503 at the cap.
    pub refused: AtomicU64,
    full: AtomicBool,
}

/// Serves `app` on `listener` until `shutdown` completes, within `limits`.
pub async fn run(
    listener: TcpListener,
    app: crate::routes::App,
    limits: ServerLimits,
    counts: Arc<ListenerCounts>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stopping, stop_signal) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    // An answer's head and body go out in one buffer and one `write` rather than a `writev` of
    // the two: the mock's answers are small, and copying one into hyper's buffer costs less than
    // the kernel's second piece (about 0.5 µs of system time a request on loopback). A large
    // body still goes out in parts of hyper's buffer size.
    http.writev(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: back off a little instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            let refused = counts.refused.fetch_add(1, Ordering::Relaxed) + 1;
            if !counts.full.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{} connections are open, the cap (--max-connections): new clients get 503 until some close (connection from {peer} refused; {refused} so far)",
                    limits.max_connections
                );
            }
            tokio::spawn(refuse(stream));
            continue;
        };
        if counts.full.swap(false, Ordering::Relaxed) {
            tracing::info!(
                "below the connection cap again ({} refused so far)",
                counts.refused.load(Ordering::Relaxed)
            );
        }
        let (app, http, stop_signal) = (app.clone(), http.clone(), stop_signal.clone());
        let timeout = limits.header_read_timeout;
        match &tls {
            None => {
                let control = ConnectionControl::default();
                let activity = Activity::new();
                let io = TokioIo::new(Lingering::new(stream, control.clone(), activity.clone()));
                let served = Served { control, activity, peer, timeout };
                tokio::spawn(connection(io, served, app, http, stop_signal, permit));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // The handshake counts against the header-read timeout.
                    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let control = ConnectionControl::default();
                            let activity = Activity::new();
                            let io = TokioIo::new(Lingering::new(tls, control.clone(), activity.clone()));
                            let served = Served { control, activity, peer, timeout };
                            connection(io, served, app, http, stop_signal, permit).await
                        }
                        Ok(Err(e)) => tracing::info!("TLS handshake with {peer} failed: {e}"),
                        Err(_) => tracing::info!("connection from {peer} closed: no TLS handshake within {timeout:?}"),
                    }
                });
            }
        }
    }
    drop(listener);
    let _ = stopping.send(true);
    // Wait (briefly) for the exchanges in flight; upgraded websockets are not waited for.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), permits.acquire_many(all)).await;
    Ok(())
}

/// One accepted connection (after its TLS handshake, if any) and what it is served within.
struct Served {
    control: ConnectionControl,
    activity: Arc<Activity>,
    peer: std::net::SocketAddr,
    /// The header-read timeout.
    timeout: Duration,
}

/// Serves one connection (plain or TLS) until it ends, stalls waiting for a request's headers,
/// or shutdown asks it to finish.
async fn connection<I>(
    io: TokioIo<I>,
    served: Served,
    app: crate::routes::App,
    http: hyper::server::conn::http1::Builder,
    mut stop_signal: tokio::sync::watch::Receiver<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Served { control, activity, peer, timeout } = served;
    let (begun, answered) = (activity.clone(), activity.clone());
    let service = TowerToHyperService::new(
        tower::ServiceBuilder::new()
            .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
                begun.request_begins();
                request.map(axum::body::Body::new)
            })
            .map_response(move |response| {
                answered.request_ends();
                response
            })
            .service(app),
    );
    let connection = http.serve_connection(io, service).with_upgrades();
    let stopped = async move {
        let _ = stop_signal.wait_for(|stop| *stop).await;
    };
    // hyper polls each request's handling within the connection's future, so within this scope.
    let ended = CONNECTION
        .scope(control, async move {
            tokio::pin!(connection);
            tokio::select! {
                // In this order, every time the connection is woken: no random pick to make.
                biased;
                ended = connection.as_mut() => ended.map(|()| true),
                () = activity.stalled(timeout) => Ok(false),
                () = stopped => {
                    // Finish the exchange in flight (a client still sending its headers has no
                    // longer than it would have had), then close.
                    connection.as_mut().graceful_shutdown();
                    tokio::select! {
                        ended = connection.as_mut() => ended.map(|()| true),
                        () = activity.stalled(timeout) => Ok(false),
                    }
                }
            }
        })
        .await;
    drop(permit);
    match ended {
        Ok(true) => {}
        Ok(false) => tracing::info!("connection from {peer} closed: no complete request headers within {timeout:?}"),
        Err(e) => tracing::debug!("connection from {peer} ended: {e}"),
    }
}

/// What a connection last did, for its header-read timeout: a request's headers must be complete
/// within the timeout of the connection opening or of its last sign of life (a request taken, an
/// answer given, bytes of an answer written). A timer per connection, re-armed only when it
/// fires, rather than one set and cancelled for every request (as hyper's own would).
#[derive(Debug)]
struct Activity {
    opened: tokio::time::Instant,
    /// Milliseconds after `opened`.
    last: AtomicU64,
    in_flight: AtomicU64,
    /// Requests answered, for the rare answer not one byte of which could be written yet (its
    /// writes stamp `last` otherwise): an answer is a sign of life without a clock read.
    answered: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            opened: tokio::time::Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            answered: AtomicU64::new(0),
        })
    }

    fn stamp(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn request_begins(&self) {
        // While it is in flight the connection is not stalled: no need to read the time.
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    fn request_ends(&self) {
        self.answered.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Completes once the connection has waited `timeout` for a request's headers.
    async fn stalled(&self, timeout: Duration) {
        let mut deadline = self.opened + timeout;
        let mut answered = 0;
        loop {
            tokio::time::sleep_until(deadline).await;
            let last = self.opened + Duration::from_millis(self.last.load(Ordering::Relaxed));
            let answered_before = std::mem::replace(&mut answered, self.answered.load(Ordering::Relaxed));
            let now = tokio::time::Instant::now();
            if self.in_flight.load(Ordering::Relaxed) > 0 {
                // A request's body or its handling may take as long as it takes.
                deadline = now + timeout;
            } else if last + timeout > now {
                deadline = last + timeout;
            } else if answered != answered_before {
                // Answered since the last look, yet no byte of it written since: counted from now.
                deadline = now + timeout;
            } else {
                return;
            }
        }
    }
}

/// A connection's stream that, when dropped (by hyper, after its last response or on an error,
/// or by a websocket that ended), closes lingering: see the module's documentation.
/// A request's [`ConnectionControl`] can make it reset or close silently instead.
struct Lingering<I: Socket> {
    io: Option<I>,
    control: ConnectionControl,
    /// Stamped as an answer's bytes go out (a slow reader of a long answer is not stalled).
    activity: Arc<Activity>,
}

impl<I: Socket> Lingering<I> {
    fn new(io: I, control: ConnectionControl, activity: Arc<Activity>) -> Self {
        Lingering { io: Some(io), control, activity }
    }

    fn wrote(&self, written: Poll<std::io::Result<usize>>) -> Poll<std::io::Result<usize>> {
        if let Poll::Ready(Ok(n)) = &written
            && *n > 0
        {
            self.activity.stamp();
        }
        written
    }

    fn io(&mut self) -> Pin<&mut I> {
        Pin::new(self.io.as_mut().expect("the stream lives until drop"))
    }

    /// What a fault asked for, before anything of the answer is written.
    fn refuse_to_write(&mut self) -> Option<std::io::Error> {
        match self.control.wanted() {
            KEEP => None,
            RESET => {
                if let Some(io) = &self.io {
                    let _ = io.tcp().set_zero_linger();
                }
                Some(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by an injected fault"))
            }
            _ => Some(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "closed by an injected fault")),
        }
    }
}

impl<I: Socket> AsyncRead for Lingering<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_read(cx, buf)
    }
}

impl<I: Socket> AsyncWrite for Lingering<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        if let Some(refused) = self.refuse_to_write() {
            return Poll::Ready(Err(refused));
        }
        let written = self.io().poll_write(cx, buf);
        self.wrote(written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(refused) = self.refuse_to_write() {
            return Poll::Ready(Err(refused));
        }
        let written = self.io().poll_write_vectored(cx, bufs);
        self.wrote(written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(AsyncWrite::is_write_vectored)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io().poll_shutdown(cx)
    }
}

impl<I: Socket> Drop for Lingering<I> {
    fn drop(&mut self) {
        // A reset goes out as the socket closes (SO_LINGER 0): no lingering then.
        if self.control.wanted() == RESET {
            return;
        }
        if let (Some(io), Ok(runtime)) = (self.io.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(linger(io));
        }
    }
}

/// Stops writing, then reads and discards until the client closes or a bound is reached.
async fn linger<I: AsyncRead + AsyncWrite + Unpin>(mut io: I) {
    let _ = tokio::time::timeout(LINGER_TIME, async {
        if io.shutdown().await.is_err() {
            return;
        }
        let mut scratch = vec![0u8; 8 * 1024];
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            match io.read(&mut scratch).await {
                Ok(0) | Err(_) => return,
                Ok(n) => discarded += n,
            }
        }
        tracing::info!(
            "closed a connection whose client was still sending after its last response: {discarded} bytes read and discarded (the bound); it may see a reset"
        );
    })
    .await;
}

/// Answers a connection over the cap with 503, in the envelope of the service its request
/// names, and closes it.
async fn refuse(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        // Read the request's head first: its path picks the envelope, and a client that is still
        // writing when the answer comes takes it for a broken server, not for a 503.
        let mut head = Vec::with_capacity(1024);
        let mut buf = [0u8; 1024];
        while head.len() < 16 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = stream.write_all(refusal(&head).as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The 503 for a request head (`GET /v1/... HTTP/1.1`, possibly cut short).
fn refusal(head: &[u8]) -> String {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let path = String::from_utf8_lossy(line).split_whitespace().nth(1).unwrap_or("/").to_owned();
    let service = crate::http::Service::for_path(path.split('?').next().unwrap_or("/"));
    let tracking = crate::ids::prefixed(service.tracking_prefix());
    let why = "The mock holds as many connections as --max-connections allows; retry shortly.";
    let body = service
        .error_body(axum::http::StatusCode::SERVICE_UNAVAILABLE, &["Service Unavailable".to_owned()], &tracking)
        .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ntrackingid: {tracking}\r\nx-wxcc-mock-diagnostic: {why}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_answers_in_the_envelope_of_the_service_the_request_names() {
        let body = |head: &str| {
            let text = refusal(head.as_bytes());
            assert!(text.starts_with("HTTP/1.1 503 ") && text.contains("retry-after: 1"), "{text}");
            let tracking = text.split("trackingid: ").nth(1).and_then(|r| r.split("\r\n").next()).expect("an id");
            let body: serde_json::Value =
                serde_json::from_str(text.split("\r\n\r\n").nth(1).expect("a body")).expect("json");
            assert_eq!(body["trackingId"], tracking);
            (tracking.to_owned(), body)
        };
        let (id, notifs) = body("POST /v1/subscriptions HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(id.starts_with("NOTIFS_") && notifs["error"]["key"] == 503, "{notifs}");
        let (id, agents) = body("PUT /v1/agents/session/state?x=1 HTTP/1.1\r\n");
        assert!(id.starts_with("AQM_") && agents["errorType"] == "Service Unavailable", "{agents}");
        let (id, config) = body("");
        assert!(id.starts_with("ccconfig_") && config["error"]["key"] == "503", "{config}");
    }

    /// Watches `activity` as a connection does: `stalled(300 ms)` in a task of its own.
    fn watch(activity: &Arc<Activity>) -> tokio::task::JoinHandle<()> {
        let activity = activity.clone();
        tokio::spawn(async move { activity.stalled(Duration::from_millis(300)).await })
    }

    /// Whether the watch ended by `at` ms after the connection opened (time is paused: it moves
    /// on to each timer in turn).
    async fn stalled_by(activity: &Activity, watch: &tokio::task::JoinHandle<()>, at: u64) -> bool {
        tokio::time::sleep_until(activity.opened + Duration::from_millis(at)).await;
        watch.is_finished()
    }

    /// The watch is still on at `ms - 1` and has ended by `ms + 1`.
    async fn stalls_at(activity: &Activity, watch: &tokio::task::JoinHandle<()>, ms: u64) {
        assert!(!stalled_by(activity, watch, ms - 1).await, "not stalled yet at {} ms", ms - 1);
        assert!(stalled_by(activity, watch, ms + 1).await, "stalled by {} ms", ms + 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_connection_stalls_one_timeout_after_its_last_answer_was_written() {
        let activity = Activity::new();
        let stalled = watch(&activity);
        // A request at 200 ms, answered and written at 250 ms.
        tokio::time::sleep(Duration::from_millis(200)).await;
        activity.request_begins();
        assert!(!stalled_by(&activity, &stalled, 250).await);
        activity.request_ends();
        activity.stamp();
        // 300 ms from the write, not from the opening.
        stalls_at(&activity, &stalled, 550).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_not_one_byte_of_which_is_written_yet_counts_as_given_when_the_timer_sees_it() {
        let activity = Activity::new();
        let stalled = watch(&activity);
        activity.request_begins();
        assert!(!stalled_by(&activity, &stalled, 250).await);
        // Answered at 250 ms; the client reads nothing, so nothing is written.
        activity.request_ends();
        // Seen at 300 ms: another 300 ms from then.
        stalls_at(&activity, &stalled, 600).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_is_never_stalled() {
        let activity = Activity::new();
        let stalled = watch(&activity);
        activity.request_begins();
        assert!(!stalled_by(&activity, &stalled, 5_000).await);
        activity.request_ends();
        activity.stamp();
        stalls_at(&activity, &stalled, 5_300).await;
    }
}
