//! What people typed, recovered from how each platform sends message text: Slack's `<…>`
//! links, mentions and `&amp;`-style entities, Discord's `<@123>` and `<#123>` mentions. Each
//! transport applies its decoder once, after recognising the bot's own mention and before
//! addressing and parsing. Pure functions.

/// Slack's message text as typed: a link becomes its label if it has one, else its URL; a
/// channel `<#C1|deploys>` becomes `#deploys`; a user `<@U1>` its id `U1`; `<!here>` becomes
/// `@here` (so `<!channel>`, `<!everyone>`; a user group its handle); then the entities
/// `&lt;`, `&gt;` and `&amp;` are decoded, the last last, in one pass.
pub fn slack_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let Some(end) = after.find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        out.push_str(&slack_token(&after[..end]));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    slack_entities(&out)
}

/// One `<…>` of Slack text (without the brackets), still entity-encoded.
fn slack_token(inner: &str) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(label)),
        None => (inner, None),
    };
    if let Some(user) = target.strip_prefix('@') {
        return user.to_string();
    }
    if let Some(channel) = target.strip_prefix('#') {
        return format!("#{}", label.unwrap_or(channel));
    }
    if let Some(special) = target.strip_prefix('!') {
        if let Some(label) = label {
            return label.to_string();
        }
        let name = special.split('^').next().unwrap_or(special);
        return format!("@{name}");
    }
    label.unwrap_or(target).to_string()
}

/// `&lt;` → `<`, `&gt;` → `>`, `&amp;` → `&`, left to right, so `&amp;lt;` is `&lt;`.
fn slack_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        let (decoded, len) = if tail.starts_with("&lt;") {
            ('<', 4)
        } else if tail.starts_with("&gt;") {
            ('>', 4)
        } else if tail.starts_with("&amp;") {
            ('&', 5)
        } else {
            ('&', 1)
        };
        out.push(decoded);
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// Discord's message text as typed: a user `<@123>` or `<@!123>` becomes `123`, a channel
/// `<#123>` becomes `#name` when `channel_name` knows it (it answers with the `#`) else `#123`,
/// a role `<@&123>` becomes `@&123`. Anything else is left as it is.
pub fn discord_text(text: &str, channel_name: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let token = after.find('>').map(|end| &after[..end]).and_then(|inner| {
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            let decoded = if let Some(role) = inner.strip_prefix("@&") {
                digits(role).then(|| format!("@&{role}"))
            } else if let Some(user) = inner.strip_prefix('@') {
                let user = user.strip_prefix('!').unwrap_or(user);
                digits(user).then(|| user.to_string())
            } else if let Some(channel) = inner.strip_prefix('#') {
                digits(channel)
                    .then(|| channel_name(channel).unwrap_or_else(|| format!("#{channel}")))
            } else {
                None
            };
            decoded.map(|d| (d, inner.len() + 2))
        });
        match token {
            Some((decoded, len)) => {
                out.push_str(&decoded);
                rest = &rest[start + len..];
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::{discord_text, slack_text};

    #[test]
    fn slack_links_become_what_was_typed() {
        assert_eq!(
            slack_text("URL <https://x.io/a?b=1&amp;c=2>"),
            "URL https://x.io/a?b=1&c=2"
        );
        assert_eq!(slack_text("<http://x.io|x.io>"), "x.io");
        assert_eq!(slack_text("<mailto:a@b.c|a@b.c>"), "a@b.c");
        assert_eq!(
            slack_text("<https://a.io?x=&lt;y&gt;>"),
            "https://a.io?x=<y>"
        );
    }

    #[test]
    fn slack_mentions_and_specials() {
        assert_eq!(slack_text("in <#C024BE7LR|deploys>"), "in #deploys");
        assert_eq!(slack_text("in <#C024BE7LR>"), "in #C024BE7LR");
        assert_eq!(slack_text("ask <@U024BE7LH>"), "ask U024BE7LH");
        assert_eq!(slack_text("<@U024BE7LH|bob>"), "U024BE7LH");
        assert_eq!(
            slack_text("<!here> <!channel> <!everyone>"),
            "@here @channel @everyone"
        );
        assert_eq!(slack_text("<!subteam^S1|@ops>"), "@ops");
    }

    #[test]
    fn slack_entities_are_decoded_last_and_once() {
        assert_eq!(slack_text("a&lt;b&gt;&amp;c"), "a<b>&c");
        assert_eq!(slack_text("&amp;lt;"), "&lt;");
        assert_eq!(slack_text("&lt;!channel&gt;"), "<!channel>");
        assert_eq!(slack_text("a & b; &foo;"), "a & b; &foo;");
        assert_eq!(slack_text("unclosed <http://x"), "unclosed <http://x");
        assert_eq!(slack_text("“hello world”"), "“hello world”");
    }

    #[test]
    fn discord_mentions() {
        let names = |id: &str| (id == "42").then(|| "#deploys".to_string());
        assert_eq!(discord_text("ask <@123> <@!456>", names), "ask 123 456");
        assert_eq!(discord_text("in <#42> or <#7>", names), "in #deploys or #7");
        assert_eq!(discord_text("<@&99> ops", names), "@&99 ops");
        assert_eq!(
            discord_text("a<b> <@x> <# <:emoji:1> <", names),
            "a<b> <@x> <# <:emoji:1> <"
        );
        assert_eq!(discord_text("é<@1>é", names), "é1é");
    }
}
