//! TLS for the `postgres` provider: libpq's `sslmode` and `sslrootcert` in the admin URL, on
//! rustls (ring) through `tokio-postgres-rustls`.
//!
//! | value | meaning (libpq, [SSL Support §34.19, table 34.1](https://www.postgresql.org/docs/15/libpq-ssl.html#LIBPQ-SSL-SSLMODE-STATEMENTS)) |
//! |---|---|
//! | `disable` | plain TCP only |
//! | `prefer` | TLS when the server offers it, else plain; the certificate is not checked |
//! | `require` | TLS or no connection; the certificate is not checked (but see `sslrootcert`) |
//! | `verify-ca` | TLS, and the certificate chains to `sslrootcert` |
//! | `verify-full` | TLS, the certificate chains to a trusted CA and names the host |
//!
//! `sslrootcert=PATH` ([libpq-connect §34.1.2](https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNECT-SSLROOTCERT))
//! is a PEM file of CA certificates. As in libpq, `require` (and `prefer`) with a CA file
//! check the chain like `verify-ca`. Without one, `verify-full` trusts the system's store
//! (libpq 16's `sslrootcert=system`, which keyfire also accepts): `rustls-native-certs`, the
//! OS's CA bundle where a company installs the CA that signs its internal servers, and the
//! store keyfire's HTTPS client reads. Not `webpki-roots`: a compiled-in public list would
//! never trust such a CA. As libpq 16 does, the system store is refused with any mode but
//! `verify-full`: anyone can get a publicly trusted certificate for a name they control, so a
//! chain to it proves nothing without the host name.
//!
//! The default when the URL names no `sslmode` is not libpq's `prefer`, which an attacker on
//! the path defeats by answering "no TLS": keyfire sends an admin login and new password
//! verifiers, so it is `verify-full` for any host that is not this machine, and `prefer` for
//! loopback addresses and Unix sockets, where nothing crosses a network. "This machine" is
//! judged by what is dialled: `hostaddr` where the URL gives it, else the host.
//!
//! Client certificates (`sslcert`, `sslkey`) are not supported and are refused by name.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_postgres::config::{Host, SslMode as WireMode};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::secret::Secret;

/// libpq's `sslmode` values, but `allow` (plain first, TLS only if the server insists), which
/// keyfire has no use for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "disable" => Self::Disable,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }

    /// What tokio-postgres is told: it knows whether to ask for TLS, not how to check it.
    fn wire(self) -> WireMode {
        match self {
            Self::Disable => WireMode::Disable,
            Self::Prefer => WireMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => WireMode::Require,
        }
    }
}

impl std::fmt::Display for SslMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    // The value is not shown: whatever sits in the admin URL is treated as secret.
    #[error(
        "the admin URL's sslmode must be one of disable, prefer, require, verify-ca, verify-full"
    )]
    BadMode,
    #[error(
        "the admin URL's {0} (a client certificate) is not supported: the admin role logs in with its password"
    )]
    ClientCertificate(String),
    #[error("the admin URL's sslmode={0} needs sslrootcert=PATH, the CA file to check the server's certificate against")]
    NeedsRootCert(SslMode),
    #[error("the admin URL's sslrootcert=system needs sslmode=verify-full: anyone can get a publicly trusted certificate for a name they control, so only the host name check makes it proof")]
    SystemNeedsVerifyFull,
    #[error("the admin URL's sslrootcert {path}: {reason}")]
    RootCert { path: String, reason: String },
    #[error("no usable CA certificate in the system's trust store; give sslrootcert=PATH in the admin URL")]
    NoSystemRoots,
    #[error("TLS set-up failed: {0}")]
    Setup(String),
    /// Its `sslmode` could not be read, so none is assumed: the string is refused.
    #[error(
        "the admin connection string does not follow libpq's `key = value` form (check its quotes and backslashes; the text is not shown)"
    )]
    KeyValueSyntax,
}

/// Where trusted CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Roots {
    /// No check: `disable`, and `prefer` / `require` without a CA file.
    None,
    System,
    File(PathBuf),
}

/// The TLS settings of one admin URL, after the defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TlsSettings {
    pub(super) mode: SslMode,
    roots: Roots,
    /// Whether the chain is checked but not the host name (`verify-ca`, or a CA file under
    /// `prefer`/`require`).
    chain_only: bool,
}

/// An admin URL split in two: what tokio-postgres parses, and the TLS parameters it does not
/// know (it takes `sslmode` but only up to `require`, and refuses `sslrootcert`).
pub(super) struct Split {
    /// The connection string without `sslmode` and `sslrootcert`. It holds the password.
    pub(super) rest: Secret,
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

const CLIENT_CERT_PARAMS: &[&str] = &["sslcert", "sslkey", "sslpassword"];

/// Take `sslmode` and `sslrootcert` out of a URL (`postgresql://...?sslmode=verify-full`) or a
/// key/value string (`host=db sslmode=verify-full`), libpq's two forms
/// ([§34.1.1](https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-CONNSTRING)).
pub(super) fn split(conn: &str) -> Result<Split, TlsError> {
    if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        split_url(conn)
    } else {
        split_key_values(conn)
    }
}

#[derive(Default)]
struct Found {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
}

impl Found {
    /// Whether `key` is one of the parameters keyfire handles itself (then it is taken).
    fn take(&mut self, key: &str, value: String) -> Result<bool, TlsError> {
        match key {
            "sslmode" => self.sslmode = Some(value),
            "sslrootcert" => self.sslrootcert = Some(value),
            k if CLIENT_CERT_PARAMS.contains(&k) => {
                return Err(TlsError::ClientCertificate(k.to_string()));
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn into_split(self, rest: String) -> Split {
        Split {
            rest: Secret::new(rest),
            sslmode: self.sslmode,
            sslrootcert: self.sslrootcert,
        }
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn split_url(conn: &str) -> Result<Split, TlsError> {
    // As tokio-postgres reads a URL: the credentials end at the first `@`, and the parameters
    // start at the first `?` after them (a password may hold a `?`, not an `@`).
    let after_creds = conn.find('@').map_or(0, |i| i + 1);
    let Some(q) = conn[after_creds..].find('?').map(|i| after_creds + i) else {
        return Ok(Found::default().into_split(conn.to_string()));
    };
    let mut found = Found::default();
    let mut kept = Vec::new();
    for pair in conn[q + 1..].split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if !found.take(&decode(k), decode(v))? {
            kept.push(pair);
        }
    }
    let mut rest = conn[..q].to_string();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok(found.into_split(rest))
}

/// One `key = value` of a key/value connection string, with where it sits.
struct Pair {
    key: String,
    value: String,
    span: std::ops::Range<usize>,
}

/// libpq's key/value syntax: `key = value` separated by spaces, a value in single quotes when
/// it holds spaces, `\'` and `\\` escaped. `None` when the string does not follow it; it is
/// then refused, since tokio-postgres's parser accepts some of what this one does not, and the
/// `sslmode` written in it would be silently replaced by the default.
fn pairs(conn: &str) -> Option<Vec<Pair>> {
    let b = conn.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            return Some(out);
        }
        let start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = conn[start..i].to_string();
        skip_ws(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        let mut value = Vec::new();
        let quoted = i < b.len() && b[i] == b'\'';
        if quoted {
            i += 1;
        }
        loop {
            match b.get(i) {
                None if quoted => return None,
                None => break,
                Some(b'\'') if quoted => {
                    i += 1;
                    break;
                }
                Some(c) if !quoted && c.is_ascii_whitespace() => break,
                Some(b'\\') => {
                    value.push(*b.get(i + 1)?);
                    i += 2;
                }
                Some(c) => {
                    value.push(*c);
                    i += 1;
                }
            }
        }
        let value = String::from_utf8(value).ok()?;
        // tokio-postgres also splits on Unicode spaces: read here as one value, they would be
        // two settings there.
        if key.chars().any(char::is_whitespace) || (!quoted && value.chars().any(char::is_whitespace))
        {
            return None;
        }
        out.push(Pair {
            key,
            value,
            span: start..i,
        });
    }
}

fn split_key_values(conn: &str) -> Result<Split, TlsError> {
    let Some(pairs) = pairs(conn) else {
        return Err(TlsError::KeyValueSyntax);
    };
    let mut found = Found::default();
    let mut kept = Vec::new();
    for p in pairs {
        if !found.take(&p.key, p.value)? {
            kept.push(&conn[p.span]);
        }
    }
    Ok(found.into_split(kept.join(" ")))
}

/// Whether every connection goes to this machine. What is dialled is `hostaddr` where it is
/// given (libpq: "the value for host is ignored unless needed for authentication or
/// verification"), else the host; with neither, nothing is known to be local.
fn stays_local(hosts: &[Host], hostaddrs: &[IpAddr]) -> bool {
    if !hostaddrs.is_empty() {
        return hostaddrs.iter().all(IpAddr::is_loopback);
    }
    !hosts.is_empty() && hosts.iter().all(is_local)
}

/// Whether every connection goes over a Unix domain socket.
fn only_unix_sockets(hosts: &[Host], hostaddrs: &[IpAddr]) -> bool {
    #[cfg(unix)]
    {
        hostaddrs.is_empty()
            && !hosts.is_empty()
            && hosts.iter().all(|h| matches!(h, Host::Unix(_)))
    }
    #[cfg(not(unix))]
    {
        let _ = (hosts, hostaddrs);
        false
    }
}

/// Whether connections to `host` stay on this machine.
fn is_local(host: &Host) -> bool {
    match host {
        Host::Tcp(name) => {
            name.eq_ignore_ascii_case("localhost")
                || name
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        #[cfg(unix)]
        Host::Unix(_) => true,
    }
}

/// The provider's `settings.sslmode` and `settings.sslrootcert` (checked when the inventory
/// loads): what applies when the admin URL names neither.
#[derive(Debug, Clone, Default)]
pub(super) struct Defaults {
    pub(super) sslmode: Option<String>,
    pub(super) sslrootcert: Option<String>,
}

impl Split {
    /// The settings for connecting to `hosts` and `hostaddrs` (the parsed URL's): the URL's,
    /// else the provider's settings, else the default (see the module's documentation).
    pub(super) fn settings(
        &self,
        hosts: &[Host],
        hostaddrs: &[IpAddr],
        defaults: &Defaults,
    ) -> Result<TlsSettings, TlsError> {
        let rootcert = self.sslrootcert.as_deref().or(defaults.sslrootcert.as_deref());
        let mode = match self.sslmode.as_deref().or(defaults.sslmode.as_deref()) {
            // libpq: sslmode "is ignored for Unix domain socket communication" (a server never
            // offers TLS there, so any mode that needs it would refuse every connection).
            Some(v) if only_unix_sockets(hosts, hostaddrs) => {
                SslMode::parse(v).ok_or(TlsError::BadMode)?;
                SslMode::Disable
            }
            Some(v) => SslMode::parse(v).ok_or(TlsError::BadMode)?,
            // libpq: "When using sslrootcert=system, the default sslmode is changed to
            // verify-full".
            None if rootcert == Some("system") => SslMode::VerifyFull,
            None if stays_local(hosts, hostaddrs) => SslMode::Prefer,
            None => SslMode::VerifyFull,
        };
        let file = match rootcert {
            None | Some("") => None,
            Some("system") => {
                if mode != SslMode::VerifyFull && !only_unix_sockets(hosts, hostaddrs) {
                    return Err(TlsError::SystemNeedsVerifyFull);
                }
                None
            }
            Some(path) => Some(PathBuf::from(path)),
        };
        let (roots, chain_only) = match (mode, file) {
            (SslMode::Disable, _) => (Roots::None, false),
            (SslMode::VerifyFull, None) => (Roots::System, false),
            (SslMode::VerifyFull, Some(f)) => (Roots::File(f), false),
            (SslMode::VerifyCa, None) => return Err(TlsError::NeedsRootCert(mode)),
            // libpq: `require` with a CA file checks the chain, as `verify-ca` does.
            (_, Some(f)) => (Roots::File(f), true),
            (_, None) => (Roots::None, false),
        };
        Ok(TlsSettings {
            mode,
            roots,
            chain_only,
        })
    }
}

/// The connector for a client configuration, offering ALPN `postgresql` as libpq 17 does:
/// PostgreSQL 17 requires it for `sslnegotiation=direct` (which the URL may ask for), and
/// earlier servers ignore it.
fn connector(mut config: ClientConfig) -> MakeRustlsConnect {
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    MakeRustlsConnect::new(config)
}

impl TlsSettings {
    /// Put the mode on the tokio-postgres configuration and build the TLS connector.
    pub(super) fn apply(
        &self,
        config: &mut tokio_postgres::Config,
    ) -> Result<MakeRustlsConnect, TlsError> {
        config.ssl_mode(self.mode.wire());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let roots = match &self.roots {
            Roots::None => {
                let verifier = AnyCertificate(provider);
                return Ok(connector(
                    builder
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(verifier))
                        .with_no_client_auth(),
                ));
            }
            Roots::System => system_roots()?,
            Roots::File(path) => Arc::new(file_roots(path)?),
        };
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
            .build()
            .map_err(|e| TlsError::Setup(e.to_string()))?;
        let config = if self.chain_only {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
        } else {
            builder.with_webpki_verifier(webpki)
        };
        Ok(connector(config.with_no_client_auth()))
    }
}

fn file_roots(path: &std::path::Path) -> Result<RootCertStore, TlsError> {
    let bad = |reason: String| TlsError::RootCert {
        path: path.display().to_string(),
        reason,
    };
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
        let cert = cert.map_err(|e| bad(format!("not a PEM certificate file ({e})")))?;
        store
            .add(cert)
            .map_err(|e| bad(format!("a certificate in it is unusable: {e}")))?;
    }
    if store.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(store)
}

/// The system's CA certificates, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, TlsError> {
    static ROOTS: OnceLock<Option<Arc<RootCertStore>>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            // Certificates that do not parse are skipped, as every TLS client does with a
            // system bundle; an empty store is refused below.
            store.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            (!store.is_empty()).then(|| Arc::new(store))
        })
        .clone()
        .ok_or(TlsError::NoSystemRoots)
}

/// `verify-ca`: the chain to the CA file is checked, the host name is not. rustls's verifier
/// checks the chain before the name (`WebPkiServerVerifier::verify_server_cert`), so a
/// name mismatch is the only failure left once the chain is sound.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `prefer` / `require` without a CA file: encryption without knowing who answers, libpq's
/// meaning. The handshake's signatures are still checked, so the session is bound to the
/// certificate shown. SCRAM channel binding ties the login to it only when the server offers
/// SCRAM-SHA-256-PLUS; with tokio-postgres's default (`channel_binding=prefer`) a server on the
/// path can still ask for the password in the clear, as with libpq's `require`.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A hint for a TLS failure the operator can fix, found in the error's causes.
pub(super) fn hint(err: &(dyn std::error::Error + 'static), settings: &TlsSettings) -> Option<String> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        let tls = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(c)) = tls {
            return Some(match c {
                CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                    match &settings.roots {
                        Roots::File(p) => format!(
                            "the server's certificate is not signed by a CA in {}",
                            p.display()
                        ),
                        _ => "the server's certificate is not signed by a CA in the system's trust store: give the CA file as sslrootcert=PATH in the admin URL".into(),
                    }
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    "the server's certificate does not name this host: connect by a name it holds".into()
                }
                _ => return None,
            });
        }
        if e.to_string() == "server does not support TLS" {
            return Some(format!(
                "sslmode={} needs TLS; sslmode=disable connects without it, on a network you trust only",
                settings.mode
            ));
        }
        cause = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(h: &str) -> Vec<Host> {
        vec![Host::Tcp(h.into())]
    }

    fn settings(conn: &str, host: &str) -> Result<TlsSettings, TlsError> {
        split(conn)?.settings(&tcp(host), &[], &Defaults::default())
    }

    #[test]
    fn the_tls_parameters_leave_the_url_and_the_rest_stays_as_written() {
        let s = split("postgresql://u:p%3Fw?@db:5432/app?sslmode=verify-full&application_name=x&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(
            s.rest.expose(),
            "postgresql://u:p%3Fw?@db:5432/app?application_name=x"
        );
        assert_eq!(s.sslmode.as_deref(), Some("verify-full"));
        assert_eq!(s.sslrootcert.as_deref(), Some("/etc/ca.pem"));
        let s = split("postgres://u:p@db/app?sslmode=require").unwrap();
        assert_eq!(s.rest.expose(), "postgres://u:p@db/app");
        let s = split("postgres://u:p@db/app").unwrap();
        assert_eq!(s.rest.expose(), "postgres://u:p@db/app");
        assert!(s.sslmode.is_none());
    }

    #[test]
    fn key_value_strings_lose_their_tls_parameters_too() {
        let s = split(
            r"host=db sslmode = verify-ca password='a \'b\' c' sslrootcert='/my certs/ca.pem' user=ir",
        )
        .unwrap();
        assert_eq!(s.rest.expose(), r"host=db password='a \'b\' c' user=ir");
        assert_eq!(s.sslmode.as_deref(), Some("verify-ca"));
        assert_eq!(s.sslrootcert.as_deref(), Some("/my certs/ca.pem"));
        // What the key/value parser cannot read is refused: the sslmode in it would be lost.
        for unreadable in [
            "host=db password='open",
            "host=localhost sslmode=require password=x\\",
            "host=localhost\u{2003}sslmode=require",
        ] {
            assert!(
                matches!(split(unreadable), Err(TlsError::KeyValueSyntax)),
                "{unreadable}"
            );
        }
    }

    #[test]
    fn the_default_is_verify_full_off_this_machine_and_prefer_on_it() {
        for local in ["127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost", "LOCALHOST"] {
            assert_eq!(
                settings("postgresql://u:p@x/db", local).unwrap().mode,
                SslMode::Prefer,
                "{local}"
            );
        }
        for remote in ["db.internal", "10.0.0.5", "2001:db8::1", "localhost.evil.example"] {
            let s = settings("postgresql://u:p@x/db", remote).unwrap();
            assert_eq!(s.mode, SslMode::VerifyFull, "{remote}");
            assert_eq!(s.roots, Roots::System);
        }
        // One remote host among several is enough.
        let s = split("postgresql://u:p@x/db").unwrap();
        let hosts = vec![Host::Tcp("127.0.0.1".into()), Host::Tcp("db".into())];
        assert_eq!(
            s.settings(&hosts, &[], &Defaults::default()).unwrap().mode,
            SslMode::VerifyFull
        );
        // What is dialled decides: a hostaddr off this machine behind `localhost`, or a
        // hostaddr alone, is remote; a loopback hostaddr is local whatever the host is called.
        let remote: IpAddr = "10.0.0.5".parse().unwrap();
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let mode = |hosts: &[Host], addrs: &[IpAddr]| {
            s.settings(hosts, addrs, &Defaults::default()).unwrap().mode
        };
        assert_eq!(mode(&tcp("localhost"), &[remote]), SslMode::VerifyFull);
        assert_eq!(mode(&[], &[remote]), SslMode::VerifyFull);
        assert_eq!(mode(&[], &[]), SslMode::VerifyFull);
        assert_eq!(mode(&tcp("db.internal"), &[loopback]), SslMode::Prefer);
        assert_eq!(mode(&[], &[loopback]), SslMode::Prefer);
    }

    #[test]
    fn modes_and_roots_follow_libpq() {
        let s = settings("postgresql://u:p@x/db?sslmode=require", "db").unwrap();
        assert_eq!((s.roots, s.chain_only), (Roots::None, false));
        // libpq: `require` with a CA file checks the chain.
        let s = settings(
            "postgresql://u:p@x/db?sslmode=require&sslrootcert=/ca.pem",
            "db",
        )
        .unwrap();
        assert_eq!((s.roots, s.chain_only), (Roots::File("/ca.pem".into()), true));
        let s = settings(
            "postgresql://u:p@x/db?sslmode=verify-full&sslrootcert=system",
            "db",
        )
        .unwrap();
        assert_eq!((s.roots, s.chain_only), (Roots::System, false));
        assert!(matches!(
            settings("postgresql://u:p@x/db?sslmode=verify-ca", "db"),
            Err(TlsError::NeedsRootCert(SslMode::VerifyCa))
        ));
        assert!(matches!(
            settings(
                "postgresql://u:p@x/db?sslmode=require&sslrootcert=system",
                "db"
            ),
            Err(TlsError::SystemNeedsVerifyFull)
        ));
        // Over a Unix socket the mode is ignored, as libpq does; a misspelt one is still an
        // error.
        #[cfg(unix)]
        {
            let unix = vec![Host::Unix("/var/run/postgresql".into())];
            let s = split("host=/var/run/postgresql sslmode=verify-full").unwrap();
            let got = s.settings(&unix, &[], &Defaults::default()).unwrap();
            assert_eq!(got.mode, SslMode::Disable);
            let s = split("host=/var/run/postgresql sslmode=verify-everything").unwrap();
            assert!(matches!(
                s.settings(&unix, &[], &Defaults::default()),
                Err(TlsError::BadMode)
            ));
        }
        // sslrootcert=system alone makes the default verify-full, even on loopback.
        let s = settings("postgresql://u:p@x/db?sslrootcert=system", "127.0.0.1").unwrap();
        assert_eq!((s.mode, s.roots), (SslMode::VerifyFull, Roots::System));
        let s = settings("postgresql://u:p@x/db?sslmode=disable&sslrootcert=/ca.pem", "db")
            .unwrap();
        assert_eq!(s.roots, Roots::None);
    }

    #[test]
    fn the_provider_settings_apply_when_the_url_names_nothing() {
        let defaults = Defaults {
            sslmode: Some("verify-ca".into()),
            sslrootcert: Some("/etc/pg/ca.pem".into()),
        };
        let s = split("postgresql://u:p@x/db")
            .unwrap()
            .settings(&tcp("127.0.0.1"), &[], &defaults)
            .unwrap();
        assert_eq!(s.mode, SslMode::VerifyCa);
        assert_eq!(s.roots, Roots::File("/etc/pg/ca.pem".into()));
        // The URL's own parameters win, as libpq's win over PGSSLMODE.
        let s = split("postgresql://u:p@x/db?sslmode=verify-full&sslrootcert=/ca.pem")
            .unwrap()
            .settings(&tcp("127.0.0.1"), &[], &defaults)
            .unwrap();
        assert_eq!((s.mode, s.roots), (SslMode::VerifyFull, Roots::File("/ca.pem".into())));
    }

    #[test]
    fn a_bad_sslmode_is_named_without_its_value() {
        let err = settings("postgresql://u:p@x/db?sslmode=verify_full", "db").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sslmode must be one of"), "{text}");
        assert!(!text.contains("verify_full"), "{text}");
        // `allow` is libpq's, but plain-first is never what keyfire wants.
        assert!(settings("postgresql://u:p@x/db?sslmode=allow", "db").is_err());
        let err = split("postgresql://u:p@x/db?sslkey=/k.pem").err().unwrap();
        assert!(err.to_string().contains("sslkey"), "{err}");
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        for path in [dir.path().join("missing.pem"), empty] {
            let s = TlsSettings {
                mode: SslMode::VerifyFull,
                roots: Roots::File(path.clone()),
                chain_only: false,
            };
            let mut config = tokio_postgres::Config::new();
            let err = s.apply(&mut config).err().unwrap().to_string();
            assert!(err.contains(&path.display().to_string()), "{err}");
        }
    }
}
