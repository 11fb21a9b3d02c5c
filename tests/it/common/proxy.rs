//! A gated TCP proxy in front of the broker for the daemon (no MQTT logic, it only
//! forwards bytes): closed, it refuses the daemon; severed, the daemon's connection
//! drops; optionally with latency from the broker to the daemon (a slow link).

use std::io;
use std::net::{Shutdown as NetShutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A plain TCP forwarder in front of the broker for the daemon. While closed it
/// accepts and immediately closes connections (the daemon sees the broker as gone);
/// open, it forwards bytes both ways. Existing connections end when the broker side
/// ends. Used to let the test's subscriber resubscribe after a broker restart before
/// the daemon can reconnect, so that nothing the daemon sends is missed by the test.
pub struct GatedProxy {
    port: u16,
    open: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// Connections forwarded to the broker so far.
    pub forwarded: Arc<AtomicUsize>,
    /// Connections refused (closed at once) so far.
    pub refused: Arc<AtomicUsize>,
    /// The daemon side of each forwarded connection (to sever them).
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl GatedProxy {
    pub fn start(upstream: u16) -> Self {
        Self::with_latency(upstream, Duration::ZERO)
    }

    /// Like `start`, but what the broker sends reaches the daemon `latency` later
    /// (a slow link: satellite, congested LTE, a far-away broker).
    pub fn with_latency(upstream: u16, latency: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let open = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (o, s, f, r, c) = (
            open.clone(),
            stop.clone(),
            forwarded.clone(),
            refused.clone(),
            conns.clone(),
        );
        thread::Builder::new()
            .name("mqtt-proxy".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if s.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(down) = conn else { continue };
                    if !o.load(Ordering::SeqCst) {
                        r.fetch_add(1, Ordering::SeqCst);
                        let _ = down.shutdown(NetShutdown::Both);
                        continue;
                    }
                    match TcpStream::connect(("127.0.0.1", upstream)) {
                        Ok(up) => {
                            f.fetch_add(1, Ordering::SeqCst);
                            if let Ok(clone) = down.try_clone() {
                                c.lock().unwrap().push(clone);
                            }
                            pump(down, up, latency);
                        }
                        Err(_) => {
                            r.fetch_add(1, Ordering::SeqCst);
                            let _ = down.shutdown(NetShutdown::Both);
                        }
                    }
                }
            })
            .expect("spawn proxy thread");
        GatedProxy {
            port,
            open,
            stop,
            forwarded,
            refused,
            conns,
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }

    /// Cuts every forwarded connection (the daemon sees its broker connection drop).
    pub fn sever(&self) {
        for conn in self.conns.lock().unwrap().drain(..) {
            let _ = conn.shutdown(NetShutdown::Both);
        }
    }
}

fn pump(down: TcpStream, up: TcpStream, latency: Duration) {
    let _ = down.set_nodelay(true);
    let _ = up.set_nodelay(true);
    let (Ok(down2), Ok(up2)) = (down.try_clone(), up.try_clone()) else {
        return;
    };
    let copy = |mut from: TcpStream, mut to: TcpStream| {
        move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = from.shutdown(NetShutdown::Both);
            let _ = to.shutdown(NetShutdown::Both);
        }
    };
    thread::spawn(copy(down, up));
    if latency.is_zero() {
        thread::spawn(copy(up2, down2));
        return;
    }
    // Broker → daemon with latency but no throughput cap: a reader stamps each chunk,
    // a writer sends it when it is due.
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    let mut from = up2;
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match io::Read::read(&mut from, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + latency, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let mut to = down2;
    thread::spawn(move || {
        for (due, bytes) in rx {
            thread::sleep(due.saturating_duration_since(Instant::now()));
            if io::Write::write_all(&mut to, &bytes).is_err() {
                break;
            }
        }
        // The broker side ended (after everything it sent was delivered).
        let _ = to.shutdown(NetShutdown::Both);
    });
}

impl Drop for GatedProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}
