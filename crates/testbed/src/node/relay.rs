//! The host's way into the node: a listener on the host's 127.0.0.1 whose connections go
//! through a Unix socket to the relay program inside the namespace (testbed/node's cmd/relay),
//! which dials the service there. No link or route joins the namespace to the host.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A host port relayed to one service in the namespace; stops accepting when dropped (open
/// connections end with the namespace).
pub struct Relay {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Listens on a free port of 127.0.0.1 and passes each connection to `socket`.
    pub fn start(socket: PathBuf) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("relay-{port}"))
            .spawn(move || accept(listener, socket, stopped))?;
        Ok(Relay {
            port,
            stop,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept(listener: TcpListener, socket: PathBuf, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((client, _)) => {
                let socket = socket.clone();
                let _ = std::thread::Builder::new()
                    .name("relay-conn".into())
                    .spawn(move || join(client, socket));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Copies both ways between a host client and the namespace's socket until both sides close.
fn join(client: TcpStream, socket: PathBuf) {
    let _ = client.set_nonblocking(false);
    let Ok(upstream) = UnixStream::connect(&socket) else {
        return;
    };
    let (Ok(client_w), Ok(upstream_w)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let up = std::thread::spawn(move || {
        copy(client, upstream_w, |s| {
            let _ = s.shutdown(Shutdown::Write);
        })
    });
    copy(upstream, client_w, |s| {
        let _ = s.shutdown(Shutdown::Write);
    });
    let _ = up.join();
}

fn copy<R: Read, W: Write>(mut from: R, mut to: W, close: impl FnOnce(&W)) {
    let _ = std::io::copy(&mut from, &mut to);
    close(&to);
}
