//! A network partition between one process and the Cassandra nodes, made in user space:
//! a TCP relay in front of each node, which the process reaches through
//! `--cql-nodes` (the relays) and `--cql-address-map` (each node's advertised address
//! to its relay). While the link is cut no byte passes either way and new connections
//! get no answer; what was sent meanwhile is delivered once it is mended, as TCP
//! retransmits it after a partition heals. Every other process reaches the nodes
//! directly.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Link {
    /// (the node's address, its relay's).
    relays: Vec<(SocketAddr, SocketAddr)>,
    open: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Link {
    /// A relay for each of `nodes` (`host:port`), open.
    pub async fn start(nodes: &[String]) -> Self {
        let (open, _) = watch::channel(true);
        let mut relays = Vec::new();
        let mut tasks = Vec::new();
        for node in nodes {
            let node: SocketAddr = tokio::net::lookup_host(node).await.unwrap().next().unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            relays.push((node, listener.local_addr().unwrap()));
            tasks.push(tokio::spawn(relay(listener, node, open.subscribe())));
        }
        Self { relays, open, tasks }
    }

    /// `--cql-nodes` for the process behind the link.
    pub fn contact_points(&self) -> String {
        self.relays.iter().map(|(_, relay)| relay.to_string()).collect::<Vec<_>>().join(",")
    }

    /// `--cql-address-map` for the process behind the link.
    pub fn address_map(&self) -> String {
        self.relays.iter().map(|(node, relay)| format!("{node}={relay}")).collect::<Vec<_>>().join(",")
    }

    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    pub fn mend(&self) {
        self.open.send_replace(true);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.tasks.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

async fn relay(listener: TcpListener, node: SocketAddr, mut open: watch::Receiver<bool>) {
    loop {
        // Cut: connections wait in the backlog unanswered.
        let _ = open.wait_for(|open| *open).await;
        let Ok((client, _)) = listener.accept().await else { continue };
        let open = open.clone();
        tokio::spawn(async move {
            let _ = open.clone().wait_for(|open| *open).await;
            let Ok(upstream) = TcpStream::connect(node).await else { return };
            let (client_read, client_write) = client.into_split();
            let (node_read, node_write) = upstream.into_split();
            tokio::select! {
                () = pump(client_read, node_write, open.clone()) => {}
                () = pump(node_read, client_write, open) => {}
            }
        });
    }
}

/// Copies bytes one way; while the link is cut, what was read waits.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut open: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let _ = open.wait_for(|open| *open).await;
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let _ = open.wait_for(|open| *open).await;
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
