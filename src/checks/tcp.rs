//! The `tcp` kind, declared as `kind = "tcp"`, `address = "host:port"`: ok when a TCP
//! connection opens before the deadline. A refusal is an `error` at once; a host that drops
//! the handshake is a `timeout` at the deadline.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::time::timeout_at;

use super::{Check, Declarable, Declared, Failure, Run};
use crate::config::CheckSettings;

/// `kind = "tcp"`, `address = "host:port"`.
pub(crate) const DECLARABLE: Declarable = Declarable {
    kind: "tcp",
    required: &["address"],
    optional: &[],
    build: declare,
};

fn declare(settings: &CheckSettings) -> Declared {
    let address = settings.address.as_deref().unwrap_or_default();
    let check = TcpCheck::new(address).map_err(|why| ("address", why))?;
    Ok(Arc::new(check))
}

/// Opens and closes one TCP connection to `address`.
pub(crate) struct TcpCheck {
    address: String,
}

impl TcpCheck {
    /// A check of `address`, `host:port`; the error names the problem for `health.checks.<name>.address`.
    pub fn new(address: &str) -> Result<TcpCheck, String> {
        let (host, port) = address
            .rsplit_once(':')
            .ok_or("must be host:port, e.g. \"db.internal:5432\"")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(['/', ' ', '@']) {
            return Err(format!("'{address}' has no valid host"));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 => Ok(TcpCheck {
                address: address.to_owned(),
            }),
            _ => Err(format!("'{address}' has no valid port (1 to 65535)")),
        }
    }
}

#[rocket::async_trait]
impl Check for TcpCheck {
    async fn run(&self, run: &Run) -> Result<(), Failure> {
        match timeout_at(run.deadline(), TcpStream::connect(self.address.as_str())).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(Failure::error(format!(
                "cannot connect to {}: {e}",
                self.address
            ))),
            Err(_) => Err(Failure::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_host_and_a_port() {
        assert!(TcpCheck::new("db:5432").is_ok());
        assert!(TcpCheck::new("[::1]:6379").is_ok());
        assert!(TcpCheck::new("db").is_err());
        assert!(TcpCheck::new(":5432").is_err());
        assert!(TcpCheck::new("db:0").is_err());
        assert!(TcpCheck::new("db:99999").is_err());
        assert!(TcpCheck::new("http://db:80").is_err());
    }
}
