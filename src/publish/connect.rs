//! MQTT connection options from config: URL, identity, last will, credentials, TLS.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rumqttc::{LastWill, MqttOptions, QoS, TlsConfiguration, Transport};

use super::{MqttConfig, PublishError, Topics};

/// Host, port and TLS flag of `mqtt://host[:port]` / `mqtts://host[:port]`.
pub(super) fn parse_url(url: &str) -> Result<(String, u16, bool), PublishError> {
    let bad = |why: &str| PublishError::Config(format!("mqtt.url {url:?}: {why}"));
    let (tls, rest) = if let Some(r) = url.strip_prefix("mqtts://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("mqtt://") {
        (false, r)
    } else {
        return Err(bad("must start with mqtt:// or mqtts://"));
    };
    let authority = rest.split('/').next().unwrap_or("");
    let default_port = if tls { 8883 } else { 1883 };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| bad("unclosed ["))?;
        let port = after.strip_prefix(':').map(str::parse).transpose();
        (
            h.to_string(),
            port.map_err(|_| bad("bad port"))?.unwrap_or(default_port),
        )
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("bad port"))?),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    Ok((host, port, tls))
}

/// Builds the client options; reads the password and TLS files (never logs secrets).
pub(super) fn options(cfg: &MqttConfig, topics: &Topics) -> Result<MqttOptions, PublishError> {
    let (host, port, tls) = parse_url(&cfg.url)?;
    let mut opts = MqttOptions::new(cfg.client_id(), host, port);
    opts.set_keep_alive(cfg.keep_alive);
    opts.set_clean_session(true);
    // Incoming: the protocol's largest, so that no packet the broker sends can end
    // the session (rumqttc treats one over its limit as a broken connection); the
    // daemon's own, smaller limits apply per topic as messages come out of the
    // client (see `limits`). Outgoing: the broker's limit, never reached because
    // nothing larger is queued.
    opts.set_max_packet_size(super::MQTT_MAX_REMAINING, cfg.max_packet_size);
    opts.set_last_will(LastWill::new(
        topics.status(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    let password = match (&cfg.password, &cfg.password_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(f)) => Some(
            std::fs::read_to_string(f)
                .map_err(|e| {
                    PublishError::Config(format!("mqtt.password_file {}: {e}", f.display()))
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        (None, None) => None,
    };
    match (&cfg.username, password) {
        (Some(u), p) => {
            opts.set_credentials(u.clone(), p.unwrap_or_default());
        }
        (None, Some(_)) => {
            return Err(PublishError::Config(
                "mqtt.password is set but mqtt.username is not".into(),
            ));
        }
        (None, None) => {}
    }
    if tls {
        opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls_config(cfg)?),
        )));
    }
    Ok(opts)
}

fn tls_config(cfg: &MqttConfig) -> Result<rustls::ClientConfig, PublishError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(ca) => {
            for cert in rustls_pemfile::certs(&mut reader(ca, "ca_file")?) {
                let cert = cert.map_err(|e| file_err("ca_file", ca, e))?;
                roots.add(cert).map_err(|e| file_err("ca_file", ca, e))?;
            }
            if roots.is_empty() {
                return Err(file_err("ca_file", ca, "no PEM certificate found"));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| PublishError::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots);
    match (&cfg.cert_file, &cfg.key_file) {
        (Some(c), Some(k)) => {
            let certs = rustls_pemfile::certs(&mut reader(c, "cert_file")?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| file_err("cert_file", c, e))?;
            let key = rustls_pemfile::private_key(&mut reader(k, "key_file")?)
                .map_err(|e| file_err("key_file", k, e))?
                .ok_or_else(|| file_err("key_file", k, "no PEM private key found"))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| file_err("cert_file", c, e))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn reader(path: &Path, what: &str) -> Result<BufReader<File>, PublishError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|e| file_err(what, path, e))
}

fn file_err(what: &str, path: &Path, e: impl std::fmt::Display) -> PublishError {
    PublishError::Config(format!("mqtt.{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("mqtt://10.0.0.2").unwrap(),
            ("10.0.0.2".into(), 1883, false)
        );
        assert_eq!(
            parse_url("mqtts://broker:8884").unwrap(),
            ("broker".into(), 8884, true)
        );
        assert_eq!(
            parse_url("mqtt://[::1]:1999").unwrap(),
            ("::1".into(), 1999, false)
        );
        assert!(parse_url("http://x").is_err());
        assert!(parse_url("mqtt://host:port").is_err());
    }
}
