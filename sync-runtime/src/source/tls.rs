//! TLS for `sslmode` `prefer` and `require`: encrypted, and no certificate checked,
//! as libpq does. [`Unverified`] is `postgres_openssl::MakeTlsConnector` without its
//! one costly step: `SslConnector::builder` loads the system's trusted certificates
//! (parsing `/etc/ssl/certs/ca-certificates.crt` took 30-60 ms of every run), which a
//! connection that checks no certificate never reads. The modes that check one
//! (`verify-ca`, `verify-full`) keep `postgres_openssl`.

use std::fmt::Debug;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::ssl::{Ssl, SslContext, SslMethod, SslMode, SslOptions, SslRef, SslVerifyMode};
use tokio::io::{AsyncRead, AsyncWrite, BufReader, ReadBuf};
use tokio_openssl::SslStream;
use tokio_postgres::tls::{self, ChannelBinding, MakeTlsConnect, TlsConnect};

/// Makes the TLS session of each connection from one context that trusts nothing
/// and checks nothing.
#[derive(Clone)]
pub(crate) struct Unverified {
    context: SslContext,
}

impl Unverified {
    /// The context `SslConnector::builder` makes (its options, modes and ciphers),
    /// without the trusted certificates and with no verification.
    pub(crate) fn new() -> Result<Unverified, ErrorStack> {
        let mut builder = SslContext::builder(SslMethod::tls_client())?;
        let options = (SslOptions::ALL
            | SslOptions::NO_COMPRESSION
            | SslOptions::NO_SSLV2
            | SslOptions::NO_SSLV3
            | SslOptions::SINGLE_DH_USE
            | SslOptions::SINGLE_ECDH_USE)
            & !SslOptions::DONT_INSERT_EMPTY_FRAGMENTS;
        builder.set_options(options);
        builder.set_mode(
            SslMode::AUTO_RETRY
                | SslMode::ACCEPT_MOVING_WRITE_BUFFER
                | SslMode::ENABLE_PARTIAL_WRITE
                | SslMode::RELEASE_BUFFERS,
        );
        builder.set_cipher_list(
            "DEFAULT:!aNULL:!eNULL:!MD5:!3DES:!DES:!RC4:!IDEA:!SEED:!aDSS:!SRP:!PSK",
        )?;
        builder.set_verify(SslVerifyMode::NONE);
        Ok(Unverified {
            context: builder.build(),
        })
    }
}

impl<S> MakeTlsConnect<S> for Unverified
where
    S: AsyncRead + AsyncWrite + Unpin + Debug + Send + Sync + 'static,
{
    type Stream = TlsStream<S>;
    type TlsConnect = Connector;
    type Error = ErrorStack;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connector, ErrorStack> {
        let mut ssl = Ssl::new(&self.context)?;
        // Server name indication, as `SslConnector` sends it (never for an address).
        if domain.parse::<std::net::IpAddr>().is_err() {
            ssl.set_hostname(domain)?;
        }
        Ok(Connector { ssl })
    }
}

/// The TLS session of one connection, before its handshake.
pub(crate) struct Connector {
    ssl: Ssl,
}

impl<S> TlsConnect<S> for Connector
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = TlsStream<S>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<TlsStream<S>, Self::Error>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        // Buffered below TLS, as `postgres_openssl` does: fewer reads per record.
        let stream = BufReader::with_capacity(8192, stream);
        Box::pin(async move {
            let mut stream = SslStream::new(self.ssl, stream)?;
            Pin::new(&mut stream).connect().await?;
            Ok(TlsStream(stream))
        })
    }
}

/// A connection's stream once its TLS handshake is done.
pub(crate) struct TlsStream<S>(SslStream<BufReader<S>>);

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(context, buffer)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(context, buffer)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(context)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> tls::TlsStream for TlsStream<S> {
    /// `tls-server-end-point` (RFC 5929), for SCRAM's channel binding: the hash of
    /// the server's certificate, as `postgres_openssl` computes it.
    fn channel_binding(&self) -> ChannelBinding {
        server_end_point(self.0.ssl()).map_or_else(ChannelBinding::none, |hash| {
            ChannelBinding::tls_server_end_point(hash)
        })
    }
}

fn server_end_point(ssl: &SslRef) -> Option<Vec<u8>> {
    let certificate = ssl.peer_certificate()?;
    let algorithm = certificate.signature_algorithm().object().nid();
    let digest = match algorithm.signature_algorithms()?.digest {
        Nid::MD5 | Nid::SHA1 => MessageDigest::sha256(),
        nid => MessageDigest::from_nid(nid)?,
    };
    certificate.digest(digest).ok().map(|hash| hash.to_vec())
}
