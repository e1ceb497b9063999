//! A request's path and query as both front ends read them: Rocket's own rules (non-empty,
//! percent-decoded path segments; `key=value` query pairs with `+` as a space), written once
//! so that the health port's router and Rocket's routes see the same names and values.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

/// The non-empty, percent-decoded segments of `path`, as Rocket routes on them.
pub(crate) fn segments(path: &str) -> impl Iterator<Item = Cow<'_, str>> {
    path.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).decode_utf8_lossy())
}

/// The non-empty `key=value` pairs of `query` (a bare `key` has an empty value), `+` as a
/// space and percent-decoded, as Rocket's forms read them.
pub(crate) fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    query
        .unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decoded(key), decoded(value))
        })
}

fn decoded(text: &str) -> String {
    let spaced = text.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
}

/// Whether `query` has a `verbose` key, with any value.
pub(crate) fn verbose(query: Option<&str>) -> bool {
    query_pairs(query).any(|(key, _)| key == "verbose")
}

/// The values of every `exclude` key in `query`, in order.
pub(crate) fn excluded(query: Option<&str>) -> Vec<String> {
    query_pairs(query)
        .filter(|(key, _)| key == "exclude")
        .map(|(_, value)| value)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_skip_empty_ones_and_decode() {
        let got: Vec<_> = segments("//health//re%61dy/a%2Fb/").collect();
        assert_eq!(got, ["health", "ready", "a/b"]);
        assert_eq!(segments("/").count(), 0);
    }

    #[test]
    fn query_pairs_read_like_forms() {
        let query = Some("exclude=da+ta%62ase&&verbose&exclude=&x=1=2");
        assert_eq!(excluded(query), ["da tabase", ""]);
        assert!(verbose(query));
        assert!(!verbose(Some("verbosely=1")));
        assert!(excluded(None).is_empty());
        let pairs: Vec<_> = query_pairs(Some("x=1=2")).collect();
        assert_eq!(pairs, [("x".to_owned(), "1=2".to_owned())]);
    }
}
