//! Network: TCP listen/connect, the HTTP/1.1 + HTTP/2 accept loop every HTTP server uses, a
//! one-connection HTTP client, and gRPC serve/connect for the store.
//!
//! Under madsim, `tokio::net` is simulated TCP. hyper-util's own executor and timer run on the
//! real tokio runtime (which does not exist in the simulation), so this module supplies both,
//! over `tokio::spawn` and `tokio::time`.

use std::future::Future;
/// Socket addresses, re-exported so code outside the seam never names `std::net`.
pub use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

pub use tokio::net::{TcpListener, TcpStream};

use super::task::{spawn, Shutdown};

/// How long a client may take to send request headers before the server drops it.
pub const HTTP_HEADER_READ_TIMEOUT_MS: u64 = 30_000;
/// Most bytes of response body a client buffers.
pub const MAX_CLIENT_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// Binds a TCP listener.
pub async fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Opens a TCP connection.
pub async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// hyper's executor over our `spawn`, for HTTP/2 connection tasks.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        spawn(fut);
    }
}

/// hyper's timer over `tokio::time` (simulated under madsim). Without a timer hyper silently
/// skips its header-read timeout.
#[derive(Clone, Copy, Debug, Default)]
pub struct RuntimeTimer;

struct RuntimeSleep(Pin<Box<tokio::time::Sleep>>);

impl Future for RuntimeSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for RuntimeSleep {}

impl hyper::rt::Timer for RuntimeTimer {
    fn sleep(&self, d: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(RuntimeSleep(Box::pin(tokio::time::sleep(d))))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        let d = deadline.saturating_duration_since(Instant::now());
        self.sleep(d)
    }
}

/// The request and response types of [`serve_http`].
pub type HttpRequest = hyper::Request<Incoming>;
pub type HttpResponse = hyper::Response<HttpBody>;
/// A response body: whole, or streamed chunk by chunk (watches).
pub type HttpBody = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

/// A body sent in one piece.
pub fn full_body(bytes: impl Into<Bytes>) -> HttpBody {
    Full::new(bytes.into()).boxed()
}

/// A body streamed from `chunks`; it ends when every sender is dropped. When the client goes
/// away the receiver is dropped, so senders see their `send` fail and can stop.
pub fn stream_body(chunks: tokio::sync::mpsc::Receiver<Bytes>) -> HttpBody {
    use futures::StreamExt;
    let frames = tokio_stream::wrappers::ReceiverStream::new(chunks)
        .map(|b| Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(b)));
    BodyExt::boxed(http_body_util::StreamBody::new(frames))
}

/// Serves HTTP/1.1 and HTTP/2 (cleartext, detected per connection) on `listener` until
/// `shutdown`. Each request is handed to `handler`.
pub async fn serve_http<H, Fut>(listener: TcpListener, handler: H, mut shutdown: Shutdown)
where
    H: Fn(HttpRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    loop {
        // `biased`: tokio's unbiased select draws from a process-global counter, which
        // would make two in-process simulation runs of one seed differ.
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        spawn(serve_connection(stream, handler.clone()));
    }
}

/// Serves HTTP/1.1 or HTTP/2 on one accepted connection (plain or TLS) until it closes.
pub(super) async fn serve_connection<IO, H, Fut>(io: IO, handler: H)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(HttpRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let h = handler.clone();
        async move { Ok::<_, std::convert::Infallible>(h(req).await) }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(SpawnExecutor);
    builder
        .http1()
        .timer(RuntimeTimer)
        .header_read_timeout(Duration::from_millis(HTTP_HEADER_READ_TIMEOUT_MS));
    let _ = builder.serve_connection(TokioIo::new(io), svc).await;
}

/// Errors of the HTTP client connections.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
}

/// Idle connections a [`Http1Pool`] keeps (client-go keeps 25; a closed loop
/// of 64 clients should not open and close a connection per request).
pub const HTTP_POOL_MAX_IDLE_PER_DEST: usize = 64;
/// How long an idle pooled connection is kept; well under the servers' own keep-alive limit
/// ([`HTTP_HEADER_READ_TIMEOUT_MS`]) so a request is not written to a connection the server is
/// about to close.
pub const HTTP_POOL_IDLE_TIMEOUT_MS: u64 = 10_000;

/// A client's HTTP/1.1 connection: one request at a time; reusable once the previous
/// response has been read whole.
pub struct Http1Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

/// Why a request on a connection failed: before anything was written (the request comes
/// back and can go elsewhere), or at a point where the server may have acted on it.
pub enum SendFailure {
    NotSent(Box<hyper::Request<Full<Bytes>>>, HttpClientError),
    Failed(HttpClientError),
}

impl SendFailure {
    pub fn into_error(self) -> HttpClientError {
        match self {
            SendFailure::NotSent(_, e) | SendFailure::Failed(e) => e,
        }
    }
}

impl Http1Conn {
    /// Starts HTTP/1.1 on an established connection (plain or TLS).
    pub async fn open<IO>(io: IO) -> Result<Http1Conn, HttpClientError>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
        spawn(async move {
            let _ = conn.await;
        });
        Ok(Http1Conn { sender })
    }

    /// Sends `req`; the response as soon as its head arrives.
    pub async fn send(
        &mut self,
        req: hyper::Request<Full<Bytes>>,
    ) -> Result<hyper::Response<Incoming>, SendFailure> {
        match self.sender.try_send_request(req).await {
            Ok(resp) => Ok(resp),
            Err(mut e) => match e.take_message() {
                Some(req) => Err(SendFailure::NotSent(Box::new(req), e.into_error().into())),
                None => Err(SendFailure::Failed(e.into_error().into())),
            },
        }
    }
}

/// Opens a plain HTTP/1.1 connection.
pub async fn connect_http1(addr: SocketAddr) -> Result<Http1Conn, HttpClientError> {
    Http1Conn::open(connect(addr).await?).await
}

/// Idle client connections to one destination, kept for reuse (last in, first out, so the
/// busiest connections stay warm and the rest time out).
#[derive(Default)]
pub struct Http1Pool {
    idle: std::sync::Mutex<Vec<(tokio::time::Instant, Http1Conn)>>,
}

impl Http1Pool {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(tokio::time::Instant, Http1Conn)>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A live idle connection, if one is kept; closed and expired ones are dropped.
    pub async fn checkout(&self) -> Option<Http1Conn> {
        let fresh_after = tokio::time::Instant::now()
            .checked_sub(Duration::from_millis(HTTP_POOL_IDLE_TIMEOUT_MS));
        loop {
            let mut conn = {
                let mut idle = self.idle();
                let (since, conn) = idle.pop()?;
                if fresh_after.is_some_and(|t| since < t) {
                    idle.clear(); // Everything below the newest is older still.
                    return None;
                }
                conn
            };
            // Checked in only after its response was read whole, so this resolves at once
            // unless the connection has just closed.
            if !conn.sender.is_closed() && conn.sender.ready().await.is_ok() {
                return Some(conn);
            }
        }
    }

    /// Keeps `conn` (whose last response was read whole) for the next request.
    pub fn checkin(&self, conn: Http1Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < HTTP_POOL_MAX_IDLE_PER_DEST {
            idle.push((tokio::time::Instant::now(), conn));
        }
    }
}

/// A gRPC client channel balanced over several `http://host:port` URLs (a store cluster's
/// members); a member that cannot be reached is skipped.
pub fn grpc_channel_many(
    urls: &[String],
    timeout: Duration,
) -> Result<tonic::transport::Channel, String> {
    match urls {
        [] => Err("no endpoint given".into()),
        [one] => Ok(grpc_endpoint(one, timeout)?.connect_lazy()),
        many => {
            let endpoints: Result<Vec<_>, String> =
                many.iter().map(|u| grpc_endpoint(u, timeout)).collect();
            Ok(tonic::transport::Channel::balance_list(
                endpoints?.into_iter(),
            ))
        }
    }
}

/// A gRPC client channel to `http://host:port` (connects lazily; reconnects on failure).
pub fn grpc_channel(url: &str, timeout: Duration) -> Result<tonic::transport::Channel, String> {
    Ok(grpc_endpoint(url, timeout)?.connect_lazy())
}

fn grpc_endpoint(url: &str, timeout: Duration) -> Result<tonic::transport::Endpoint, String> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(|e| format!("bad endpoint {url}: {e}"))?
        .connect_timeout(timeout)
        .timeout(timeout))
}

/// A bound gRPC server address. Binding first lets a caller report "address in use"
/// before it starts anything else.
pub struct GrpcListener {
    addr: SocketAddr,
    #[cfg(not(madsim))]
    listener: TcpListener,
}

/// Binds the address a gRPC server will serve on.
pub async fn bind_grpc(addr: SocketAddr) -> std::io::Result<GrpcListener> {
    #[cfg(not(madsim))]
    {
        let listener = TcpListener::bind(addr).await?;
        Ok(GrpcListener { addr, listener })
    }
    #[cfg(madsim)]
    {
        // madsim-tonic binds inside `serve_with_shutdown`.
        Ok(GrpcListener { addr })
    }
}

/// Serves a tonic router on a bound listener until `shutdown`.
pub async fn serve_grpc(
    router: tonic::transport::server::Router,
    listener: GrpcListener,
    mut shutdown: Shutdown,
) -> Result<(), String> {
    let addr = listener.addr;
    let signal = async move { shutdown.wait().await };
    #[cfg(not(madsim))]
    let served = {
        // Nagle's algorithm with delayed ACKs costs ~40 ms per small response.
        let incoming =
            tonic::transport::server::TcpIncoming::from(listener.listener).with_nodelay(Some(true));
        router.serve_with_incoming_shutdown(incoming, signal).await
    };
    #[cfg(madsim)]
    let served = router.serve_with_shutdown(addr, signal).await;
    served.map_err(|e| format!("grpc server on {addr}: {}", error_chain(&e)))
}

/// An error with its sources, `a: b: c`, so the root cause ("address in use") shows.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    #[tokio::test]
    async fn http_round_trip_over_loopback() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (trigger, shutdown) = super::super::task::shutdown_pair();
        spawn(serve_http(
            listener,
            |req: HttpRequest| async move {
                let body = format!("hello {}", req.uri().path());
                hyper::Response::new(full_body(body))
            },
            shutdown,
        ));
        assert_eq!(&get_whole(addr, "/x").await[..], b"hello /x");
        trigger.trigger();
    }

    /// Serves `close`-marked or keep-alive answers and counts the connections accepted.
    async fn counting_server(
        close: bool,
    ) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                spawn(serve_connection(
                    stream,
                    move |_req: HttpRequest| async move {
                        let mut resp = hyper::Response::new(full_body("ok"));
                        if close {
                            resp.headers_mut().insert(
                                "connection",
                                hyper::header::HeaderValue::from_static("close"),
                            );
                        }
                        resp
                    },
                ));
            }
        });
        (addr, accepted)
    }

    async fn pooled_get(pool: &Http1Pool, addr: SocketAddr) -> Bytes {
        let req = hyper::Request::get("/")
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let mut conn = match pool.checkout().await {
            Some(c) => c,
            None => connect_http1(addr).await.unwrap(),
        };
        let resp = conn
            .send(req)
            .await
            .map_err(SendFailure::into_error)
            .unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        pool.checkin(conn);
        body
    }

    /// Connections a pool opens for `requests` sequential GETs to a server that keeps them
    /// alive or closes each one.
    async fn connections_for(requests: usize, server_closes: bool) -> usize {
        let (addr, accepted) = counting_server(server_closes).await;
        let pool = Http1Pool::default();
        for _ in 0..requests {
            assert_eq!(&pooled_get(&pool, addr).await[..], b"ok");
        }
        accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    #[tokio::test]
    async fn pooled_connections_are_reused_unless_the_server_closes_them() {
        assert_eq!(connections_for(5, false).await, 1);
        assert_eq!(connections_for(3, true).await, 3);
    }

    /// One GET over a fresh connection, the whole body.
    async fn get_whole(addr: SocketAddr, path: &str) -> Bytes {
        let req = hyper::Request::get(path)
            .header("host", "localhost")
            .body(Full::new(Bytes::new()))
            .unwrap();
        let mut conn = connect_http1(addr).await.unwrap();
        let resp = conn
            .send(req)
            .await
            .map_err(SendFailure::into_error)
            .unwrap();
        resp.into_body().collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn streamed_bodies_arrive_whole_and_in_order() {
        let listener = listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (trigger, shutdown) = super::super::task::shutdown_pair();
        spawn(serve_http(
            listener,
            |_req: HttpRequest| async move {
                let (tx, rx) = tokio::sync::mpsc::channel(1);
                spawn(async move {
                    for chunk in ["a\n", "b\n", "c\n"] {
                        if tx.send(Bytes::from(chunk)).await.is_err() {
                            return;
                        }
                    }
                });
                hyper::Response::new(stream_body(rx))
            },
            shutdown,
        ));
        assert_eq!(&get_whole(addr, "/watch").await[..], b"a\nb\nc\n");
        trigger.trigger();
    }
}
