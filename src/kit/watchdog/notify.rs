//! systemd's notify protocol (`sd_notify(3)`): newline-separated `KEY=VALUE` lines in
//! one datagram to the unix socket named by `$NOTIFY_SOCKET` (a path, or `@name` for
//! the abstract namespace). Written here rather than taken from a crate so that a test
//! can point a notifier at its own socket without touching the process environment.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::Duration;

/// Where the service manager listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyAddr {
    /// A socket in the file system (`$NOTIFY_SOCKET` starting with `/`).
    Path(PathBuf),
    /// Linux abstract socket (`@name` in `$NOTIFY_SOCKET`).
    Abstract(Vec<u8>),
}

impl NotifyAddr {
    /// The address `$NOTIFY_SOCKET` names: `@name` for an abstract socket, an absolute
    /// path otherwise; `None` for anything else (a relative path, an empty value).
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(name) = s.strip_prefix('@') {
            Some(Self::Abstract(name.as_bytes().to_vec()))
        } else if s.starts_with('/') {
            Some(Self::Path(s.into()))
        } else {
            None
        }
    }
}

/// Sends state changes to systemd.
#[derive(Debug)]
pub struct Notifier {
    addr: NotifyAddr,
    socket: UnixDatagram,
    /// `$WATCHDOG_USEC` when systemd's watchdog is armed for this process.
    watchdog: Option<Duration>,
}

impl Notifier {
    /// The notifier systemd asked for in the environment (`Type=notify`), if any; the
    /// watchdog period too when `$WATCHDOG_USEC` is set (and `$WATCHDOG_PID`, when
    /// set, is this process).
    pub fn from_env() -> Option<Self> {
        let addr = NotifyAddr::parse(&std::env::var("NOTIFY_SOCKET").ok()?)?;
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|p| p.trim().parse::<u32>().ok() == Some(std::process::id()));
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        match Self::at(addr, watchdog) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!("systemd notify socket: {e}; not notifying");
                None
            }
        }
    }

    /// A notifier for `addr`, with systemd's watchdog period.
    pub fn at(addr: NotifyAddr, watchdog: Option<Duration>) -> io::Result<Self> {
        Ok(Self {
            addr,
            socket: UnixDatagram::unbound()?,
            watchdog,
        })
    }

    /// The watchdog period systemd set (`WatchdogSec=`), if any.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Sends `state` (e.g. `"READY=1\nSTATUS=..."`); a failure is logged at debug
    /// level only, as systemd may simply be gone during shutdown.
    pub fn send(&self, state: &str) {
        let sent = match &self.addr {
            NotifyAddr::Path(p) => self.socket.send_to(state.as_bytes(), p),
            NotifyAddr::Abstract(name) => {
                use std::os::linux::net::SocketAddrExt;
                std::os::unix::net::SocketAddr::from_abstract_name(name)
                    .and_then(|a| self.socket.send_to_addr(state.as_bytes(), &a))
            }
        };
        if let Err(e) = sent {
            tracing::debug!("systemd notify {:?}: {e}", self.addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_and_abstract_names_only() {
        assert_eq!(
            NotifyAddr::parse("/run/systemd/notify"),
            Some(NotifyAddr::Path("/run/systemd/notify".into()))
        );
        assert_eq!(
            NotifyAddr::parse("@sd-notify"),
            Some(NotifyAddr::Abstract(b"sd-notify".to_vec()))
        );
        assert_eq!(NotifyAddr::parse("relative/socket"), None);
    }

    #[test]
    fn sends_one_datagram_per_state_to_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::at(NotifyAddr::Path(path), None).unwrap();
        n.send("READY=1\nSTATUS=ok");
        let mut buf = [0u8; 64];
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1\nSTATUS=ok");

        use std::os::linux::net::SocketAddrExt;
        let name = format!("ocellus-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::at(NotifyAddr::Abstract(name.into_bytes()), None).unwrap();
        n.send("WATCHDOG=1");
        let len = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"WATCHDOG=1");
    }
}
