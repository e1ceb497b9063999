//! Opening a TCP connection in two steps, name resolution then connect, so that a name that
//! does not resolve is told apart (reason `dns`) by where it failed, not by its message.

use tokio::net::{lookup_host, TcpStream};

use super::{Failure, Reason};

/// Resolves `host` and connects to the first address that accepts; the failure names
/// `host:port` and carries its reason.
pub(crate) async fn connect(host: &str, port: u16) -> Result<TcpStream, Failure> {
    let at = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let addresses: Vec<_> = lookup_host((host, port))
        .await
        .map_err(|e| Failure::new(Reason::Dns, format!("cannot resolve {host}: {e}")))?
        .collect();
    if addresses.is_empty() {
        return Err(Failure::new(Reason::Dns, format!("{host} has no address")));
    }
    let mut last = None;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("at least one address was tried");
    Err(Failure::new(
        Reason::of_io(&e),
        format!("cannot connect to {at}: {e}"),
    ))
}

/// Splits `host:port` (IPv6 in brackets); `None` when it is not of that form.
pub(crate) fn host_port(address: &str) -> Option<(&str, u16)> {
    let (host, port) = address.rsplit_once(':')?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
    (!host.is_empty()).then_some((host, port))
}
