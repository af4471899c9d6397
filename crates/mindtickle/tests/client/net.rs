//! Loopback TCP servers that misbehave in ways the emulator cannot: one that never sends a
//! response, and a proxy that forwards a request but loses its response.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// How long any connection of these servers is kept, so no test can hang on one.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(10);
/// Connections accepted before a server stops accepting.
const MAX_CONNECTIONS: usize = 64;

/// Starts a server on 127.0.0.1:0 that accepts connections and never sends a response. Returns
/// its base URL and the number of connections accepted so far.
pub async fn silent_server() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        for _ in 0..MAX_CONNECTIONS {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                tokio::time::sleep(CONNECTION_LIFETIME).await;
                drop(socket);
            });
        }
    });
    (url, accepted)
}

/// Starts a proxy on 127.0.0.1:0 in front of `upstream`. The first `lose` connections whose
/// request starts with `request_prefix` reach the upstream in full, but the proxy discards
/// the upstream's response, as when a response is lost after the server acted on the request.
/// Every other connection is forwarded both ways. Each request needs its own connection, so
/// clients of the proxy must not pool connections.
pub async fn lossy_proxy(upstream: &str, request_prefix: &'static str, lose: usize) -> String {
    let upstream: SocketAddr = upstream
        .trim_start_matches("http://")
        .parse()
        .expect("upstream is http://<ip>:<port>");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let lost = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        for _ in 0..MAX_CONNECTIONS {
            let Ok((client, _)) = listener.accept().await else {
                return;
            };
            let lost = Arc::clone(&lost);
            tokio::spawn(async move {
                let forward = forward(client, upstream, request_prefix, lose, lost);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, forward).await;
            });
        }
    });
    url
}

async fn forward(
    mut client: TcpStream,
    upstream: SocketAddr,
    request_prefix: &str,
    lose: usize,
    lost: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let mut first = vec![0; 64 * 1024];
    let read = client.read(&mut first).await?;
    first.truncate(read);
    let mut server = TcpStream::connect(upstream).await?;
    server.write_all(&first).await?;

    let matches = first.starts_with(request_prefix.as_bytes());
    let lose_response = matches && lost.fetch_add(1, Ordering::SeqCst) < lose;
    if !lose_response {
        tokio::io::copy_bidirectional(&mut client, &mut server).await?;
        return Ok(());
    }

    // Keep both connections open and read the whole response, so the server finishes the
    // request as if the client had received it.
    let (mut client_read, _client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let upload = tokio::io::copy(&mut client_read, &mut server_write);
    let mut sink = tokio::io::sink();
    let discard = tokio::io::copy(&mut server_read, &mut sink);
    let _ = tokio::join!(upload, discard);
    Ok(())
}
