//! One simulated shopper's own keep-alive HTTP/1.1 connection, as a browser holds one (and,
//! for the open loop, a pool of them).
//!
//! The mix's load generator runs on the cores it measures, so what it spends per request is
//! taken from the server. Through `reqwest` a client spent 46-53 µs of CPU per request of
//! the mix, a fifth of all the CPU the run used, and a quarter of its profile's samples were
//! reqwest's own code, its URL parser and hyper-util's pool. A shopper sends one request at a
//! time, so a connection of its own needs none of them: the path goes out as it is, the
//! session's `Authorization` header is built once, and the answer is read as bytes. On its
//! own connection a shopper spent 23-28 µs per request.

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

/// A connection to the server, reopened when the server closes it.
pub(super) struct Connection {
    address: String,
    host: HeaderValue,
    authorization: Option<HeaderValue>,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection to `base` (`http://host:port`), sending `token` as a bearer token. Opened
    /// on the first request.
    pub(super) fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        let mut connection = Self::anonymous(base)?;
        connection.authorization = Some(HeaderValue::from_str(&format!("Bearer {token}"))?);
        Ok(connection)
    }

    /// A connection to `base` that sends no credentials, for public reads.
    pub(super) fn anonymous(base: &str) -> anyhow::Result<Self> {
        let address = base
            .strip_prefix("http://")
            .context("the mix speaks plain HTTP: the URL must start with http://")?
            .trim_end_matches('/')
            .to_owned();
        let host = HeaderValue::from_str(&address)?;
        Ok(Self { address, host, authorization: None, sender: None })
    }

    /// Sends a request and reads the whole answer: its status and body.
    pub(super) async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut request = Request::builder().method(method).uri(path).header(HOST, &self.host);
        if let Some(authorization) = &self.authorization {
            request = request.header(AUTHORIZATION, authorization);
        }
        let body = match body {
            Some(body) => {
                request = request.header(CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(body))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body)?;
        let sender = match &mut self.sender {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.sender.insert(self.open().await?),
        };
        // The connection takes the next request once it has finished with the last answer.
        let response = match sender.ready().await {
            Ok(()) => sender.send_request(request).await,
            Err(e) => Err(e),
        };
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                // The connection broke: the next request opens a new one.
                self.sender = None;
                return Err(e.into());
            }
        };
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }

    async fn open(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = tokio::net::TcpStream::connect(&self.address)
            .await
            .with_context(|| format!("connecting to {}", self.address))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes the connection.
            let _ = connection.await;
        });
        Ok(sender)
    }
}
