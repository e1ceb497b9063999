//! Who sees details: the `health.details` policy, the token, and the [`Viewer`] that
//! applies them to one request.
//!
//! Details are the free error texts, which can name hosts, ports, users and databases. Status,
//! reason, duration and criticality are shown to everyone. With `authorized`, a request sees
//! details when it presents the token as `Authorization: Bearer <token>` or as the password of
//! HTTP Basic. The caller's address is never trusted: a sidecar or an ingress on the same host
//! makes every request look local. A wrong or missing token changes only the details.

use serde::Deserialize;

use crate::redact::Secret;

/// `[<profile>.health] details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Details {
    /// Everyone sees details (the `debug` profile's default).
    Always,
    /// Only requests that present the token (the default).
    #[default]
    Authorized,
    /// Nobody does.
    Never,
}

/// The policy in force, in managed state.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    details: Details,
    token: Option<Secret>,
}

impl Policy {
    /// The policy for `details` with the token from `VITALS_TOKEN` (which wins) or `token`
    /// (`health.token`); see [`Policy::from_sources`].
    pub fn new(details: Details, token: Option<Secret>) -> Policy {
        Policy::from_sources(details, std::env::var("VITALS_TOKEN").ok(), token)
    }

    /// The policy for `details` with the token `env` (the value of `VITALS_TOKEN`, if set) or
    /// else `configured`. Each is trimmed, as a presented token is, and one that is empty or
    /// all white space counts as unset: `VITALS_TOKEN=""` does not hide `health.token`.
    fn from_sources(details: Details, env: Option<String>, configured: Option<Secret>) -> Policy {
        let token = env
            .map(Secret::new)
            .and_then(trimmed)
            .or_else(|| configured.and_then(trimmed));
        if details == Details::Authorized && token.is_none() {
            log::warn!(
                target: "vitals::access",
                "health.details = \"authorized\" but no token is set (health.token or \
                 VITALS_TOKEN): nobody sees details"
            );
        }
        Policy { details, token }
    }

    /// Whether the request with `authorization` (its `Authorization` header) sees details;
    /// `Err` when it presented a token that is not the right one.
    fn allows(&self, authorization: Option<&str>) -> Result<bool, ()> {
        match self.details {
            Details::Always => Ok(true),
            Details::Never => Ok(false),
            Details::Authorized => {
                let Some(presented) = authorization.and_then(presented_token) else {
                    return Ok(false);
                };
                match &self.token {
                    Some(token) if same(presented.as_bytes(), token.expose().as_bytes()) => {
                        Ok(true)
                    }
                    _ => Err(()),
                }
            }
        }
    }

    /// Whether signing in can show more: the policy is `authorized` and a token exists.
    pub fn sign_in_helps(&self) -> bool {
        self.details == Details::Authorized && self.token.is_some()
    }
}

/// `token` without surrounding white space; `None` when nothing is left.
fn trimmed(token: Secret) -> Option<Secret> {
    let text = token.expose().trim();
    (!text.is_empty()).then(|| Secret::new(text.to_owned()))
}

/// What one request may see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Viewer {
    /// Whether error texts are shown to it.
    pub details: bool,
}

impl Policy {
    /// What the request `method path` with `authorization` (its `Authorization` header) sees; a
    /// wrong token is logged and sees what no token sees.
    pub fn viewer(&self, authorization: Option<&str>, method: &str, path: &str) -> Viewer {
        let details = self.allows(authorization).unwrap_or_else(|()| {
            // Never the value: a near miss would tell an attacker how near.
            log::warn!(
                target: "vitals::access",
                "{method} {path}: wrong token presented; details withheld"
            );
            false
        });
        Viewer { details }
    }
}

/// The token in `Bearer <token>`, or the password in `Basic base64(user:password)`.
fn presented_token(authorization: &str) -> Option<String> {
    let (scheme, value) = authorization.trim().split_once(' ')?;
    let value = value.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Some(value.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = String::from_utf8(base64_decode(value)?).ok()?;
        let (_user, password) = decoded.split_once(':')?;
        return Some(password.to_owned());
    }
    None
}

/// Compares in time that depends only on the lengths, not on where the texts differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Standard base64 (padding optional, as browsers and curl vary); `None` when it is not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    use base64::Engine as _;
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    LENIENT.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(details: Details, token: &str) -> Policy {
        Policy {
            details,
            token: Some(Secret::new(token.into())),
        }
    }

    #[test]
    fn bearer_and_basic_present_the_token() {
        let p = policy(Details::Authorized, "s3cret");
        assert_eq!(p.allows(Some("Bearer s3cret")), Ok(true));
        assert_eq!(p.allows(Some("bearer  s3cret ")), Ok(true));
        // "anyone:s3cret"
        assert_eq!(p.allows(Some("Basic YW55b25lOnMzY3JldA==")), Ok(true));
        assert_eq!(p.allows(None), Ok(false));
        assert_eq!(p.allows(Some("Bearer nope")), Err(()));
        assert_eq!(p.allows(Some("Basic !!!")), Ok(false));
    }

    #[test]
    fn always_and_never_ignore_the_token() {
        assert_eq!(policy(Details::Always, "t").allows(None), Ok(true));
        assert_eq!(
            policy(Details::Never, "t").allows(Some("Bearer t")),
            Ok(false)
        );
    }

    #[test]
    fn without_a_token_nobody_is_authorized() {
        let p = Policy {
            details: Details::Authorized,
            token: None,
        };
        assert_eq!(p.allows(Some("Bearer guess")), Err(()));
        assert!(!p.sign_in_helps());
    }

    fn from(env: Option<&str>, configured: Option<&str>) -> Policy {
        Policy::from_sources(
            Details::Authorized,
            env.map(str::to_owned),
            configured.map(|t| Secret::new(t.to_owned())),
        )
    }

    #[test]
    fn an_empty_vitals_token_does_not_hide_the_configured_one() {
        for empty in ["", "  \t"] {
            let p = from(Some(empty), Some("s3cret"));
            assert_eq!(p.allows(Some("Bearer s3cret")), Ok(true), "{empty:?}");
        }
    }

    #[test]
    fn a_vitals_token_wins_over_the_configured_one() {
        let p = from(Some("from-env"), Some("from-file"));
        assert_eq!(p.allows(Some("Bearer from-env")), Ok(true));
        assert_eq!(p.allows(Some("Bearer from-file")), Err(()));
    }

    #[test]
    fn a_token_is_compared_trimmed_as_the_presented_one_is() {
        let configured = from(None, Some(" s3cret\n"));
        assert_eq!(configured.allows(Some("Bearer s3cret")), Ok(true));
        let from_env = from(Some("s3cret "), None);
        assert_eq!(from_env.allows(Some("Bearer  s3cret")), Ok(true));
    }

    #[test]
    fn an_all_white_space_token_counts_as_none() {
        let p = from(Some(" "), Some("\t \n"));
        assert!(!p.sign_in_helps());
        assert_eq!(p.allows(Some("Bearer  ")), Ok(false));
        assert_eq!(p.allows(Some("Bearer x")), Err(()));
    }

    #[test]
    fn comparison_needs_every_byte() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b"a"));
    }

    #[test]
    fn base64_round_trips_what_browsers_send() {
        assert_eq!(base64_decode("dXNlcjpwQHNz").unwrap(), b"user:p@ss");
        assert_eq!(base64_decode("Zg==").unwrap(), b"f");
        assert!(base64_decode("a b").is_none());
    }
}
