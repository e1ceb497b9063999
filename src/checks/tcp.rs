//! The `tcp` kind, declared as `kind = "tcp"`, `address = "host:port"`: ok when a TCP
//! connection opens before the deadline; with `tls = true`, when a TLS handshake with that
//! host completes too (LDAPS, SMTPS, brokers behind TLS), checked against the system's roots
//! or `ca_file`. A refusal is an `error` at once; a host that drops the handshake is a
//! `timeout` at the deadline.

use std::sync::Arc;

use tokio::time::timeout_at;

use super::net::{connect, host_port};
use super::{Check, Declarable, Declared, Failure, Run};
use crate::config::CheckSettings;
use crate::tls;

/// `kind = "tcp"`, `address = "host:port"`.
pub(crate) const DECLARABLE: Declarable = Declarable {
    kind: "tcp",
    required: &["address"],
    optional: &["tls", "ca_file"],
    build: declare,
};

fn declare(settings: &CheckSettings) -> Declared {
    let address = settings.address.as_deref().unwrap_or_default();
    let mut check = TcpCheck::new(address).map_err(|why| ("address", why))?;
    match (settings.tls, &settings.ca_file) {
        (Some(true), ca_file) => {
            let roots = tls::roots_or_system(ca_file.as_deref()).map_err(|why| ("ca_file", why))?;
            check.tls = Some(roots);
        }
        (_, Some(_)) => return Err(("ca_file", "only tls = true uses it".into())),
        _ => {}
    }
    Ok(Arc::new(check))
}

/// Opens and closes one TCP connection to `host:port`, with a TLS handshake when asked.
pub(crate) struct TcpCheck {
    host: String,
    port: u16,
    /// `tls = true`: the roots the server's certificate is checked against.
    tls: Option<tls::Roots>,
}

impl TcpCheck {
    /// A check of `address`, `host:port`; the error says what is wrong with it.
    pub fn new(address: &str) -> Result<TcpCheck, String> {
        let (host, port) = host_port(address)
            .ok_or_else(|| format!("'{address}' is not host:port with a port from 1 to 65535"))?;
        if host.contains(['/', ' ', '@']) {
            return Err(format!("'{address}' has no valid host"));
        }
        Ok(TcpCheck {
            host: host.to_owned(),
            port,
            tls: None,
        })
    }
}

#[rocket::async_trait]
impl Check for TcpCheck {
    async fn run(&self, run: &Run) -> Result<(), Failure> {
        let checked = async {
            let stream = connect(&self.host, self.port).await?;
            let Some(roots) = &self.tls else {
                return Ok(());
            };
            let at = format!("{}:{}", self.host, self.port);
            let handshake = tls::handshake(stream, &self.host, roots)
                .await
                .map_err(|e| tls::failure(&at, &e))?;
            if let Some(not_after) = handshake.not_after {
                run.certificate_expires(not_after);
            }
            Ok(())
        };
        match timeout_at(run.deadline(), checked).await {
            Ok(result) => result,
            Err(_) => Err(Failure::timeout()),
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
