//! Why a network camera could not be reached, when GStreamer does not say: 1.22's
//! souphttpsrc reports an unknown host or a refused connection only as "Internal
//! data stream error", rtspsrc an unknown host as "Failed to connect". After such a
//! failure (before any frame) the supervisor resolves the host and tries one TCP
//! connection itself, bounded by [`CONNECT_TIMEOUT`], and names the cause.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use super::{CameraConfig, SourceKind};

/// The most time the connection attempt may take: a camera on a LAN answers in
/// milliseconds, and the check runs only after a failure, on the camera's own thread.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The cause of a failed connection to a network camera, if it is a DNS or TCP
/// failure; `None` when the host answers (the failure is further up: HTTP, RTSP).
pub(super) fn unreachable(cam: &CameraConfig) -> Option<String> {
    let default_port = match (cam.kind()?, scheme(&cam.url)?) {
        (SourceKind::Rtsp, "rtsps") => 322,
        (SourceKind::Rtsp, _) => 554,
        (SourceKind::Http, "https") => 443,
        (SourceKind::Http, _) => 80,
        (SourceKind::File, _) => return None,
    };
    let (host, port) = host_port(&cam.url, default_port)?;
    let addrs: Vec<_> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return Some(format!("cannot resolve host {host:?}: {e}")),
    };
    let Some(addr) = addrs.first() else {
        return Some(format!("host {host:?} has no address"));
    };
    match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Some(format!("connection refused by {host}:{port}"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Some(format!(
            "no answer from {host}:{port} within {CONNECT_TIMEOUT:?}"
        )),
        Err(e) => Some(format!("cannot connect to {host}:{port}: {e}")),
    }
}

fn scheme(url: &str) -> Option<&str> {
    url.split_once("://").map(|(s, _)| s)
}

/// Host and port of `scheme://[userinfo@]host[:port][/...]` (IPv6 in brackets).
fn host_port(url: &str, default_port: u16) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']')?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    let port = match port {
        Some(p) if !p.is_empty() => p.parse().ok()?,
        _ => default_port,
    };
    (!host.is_empty()).then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_of_camera_urls() {
        let hp = |u| host_port(u, 554);
        assert_eq!(hp("rtsp://cam/s"), Some(("cam".into(), 554)));
        assert_eq!(hp("rtsp://u:p@cam:8554/s?x"), Some(("cam".into(), 8554)));
        assert_eq!(hp("rtsp://[::1]:9/s"), Some(("::1".into(), 9)));
        assert_eq!(hp("rtsp://[::1]/s"), Some(("::1".into(), 554)));
        assert_eq!(hp("rtsp:///s"), None);
    }

    #[test]
    fn unknown_hosts_and_refused_ports_are_named() {
        let cam = |url: &str| -> CameraConfig {
            toml::from_str(&format!("id = \"c\"\nurl = {url:?}")).unwrap()
        };
        let dns = unreachable(&cam("http://camera.invalid/x.mjpg")).unwrap();
        assert!(
            dns.contains("cannot resolve host \"camera.invalid\""),
            "{dns}"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let refused = unreachable(&cam(&format!("rtsp://127.0.0.1:{port}/s"))).unwrap();
        assert_eq!(refused, format!("connection refused by 127.0.0.1:{port}"));
        assert_eq!(unreachable(&cam("/tmp/x.mkv")), None);
    }
}
