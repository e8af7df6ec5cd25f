//! URLs as ferry shows them: `scheme://host[:port]/path`, never the user name, password, query
//! or fragment, which is where webhook URLs carry their credentials (`https://user:pass@…`,
//! `?token=…`). Every message, summary and log line that names a webhook or status URL goes
//! through `redact_url`, and reqwest errors are shown without their URL (`error_text`).

/// `url` without its user info, query and fragment.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// The origin (`scheme://host:port`) of `url`, for comparing where requests may go.
pub(super) fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// A reqwest error with its causes, without the URL reqwest puts in its message.
pub(super) fn error_text(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn credentials_query_and_fragment_are_dropped() {
        for (url, shown) in [
            (
                "https://user:pass@hooks.example.com:8443/deploy/x?token=abc#f",
                "https://hooks.example.com:8443/deploy/x",
            ),
            ("http://h/p?token=abc", "http://h/p"),
            ("http://u@h", "http://h"),
            ("http://u:p@ss@h/x", "http://h/x"),
            ("https://[::1]:9/p", "https://[::1]:9/p"),
            ("h/p?x=1", "h/p"),
            ("http://h?token=1/x", "http://h"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
