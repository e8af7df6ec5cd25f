//! Is a message a command for ferry, and what is the command? A message is one when it starts
//! with the bot's name (`ferry env staging`, `@ferry …`, `ferry: …`) or a configured prefix
//! (`!env staging`). Direct messages and mentions are decided by each platform's transport.

/// The command in `text` if it is addressed to the bot called `name` or starts with one of
/// `prefixes`; `None` otherwise.
pub fn strip_address<'a>(text: &'a str, name: &str, prefixes: &[String]) -> Option<&'a str> {
    let text = text.trim();
    for prefix in prefixes {
        if !prefix.is_empty()
            && let Some(rest) = text.strip_prefix(prefix.as_str())
        {
            return Some(rest.trim_start());
        }
    }
    let without_at = text.strip_prefix('@').unwrap_or(text);
    let head = without_at.get(..name.len())?;
    if !head.eq_ignore_ascii_case(name) {
        return None;
    }
    let rest = &without_at[name.len()..];
    let rest = rest.strip_prefix([':', ',']).unwrap_or(rest);
    if rest.is_empty() || rest.starts_with(char::is_whitespace) {
        Some(rest.trim_start())
    } else {
        None
    }
}

/// For the shell, where every line is a command: the line without the bot's name if it has one.
pub fn shell_command<'a>(line: &'a str, name: &str, prefixes: &[String]) -> &'a str {
    strip_address(line, name, prefixes).unwrap_or(line.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bang() -> Vec<String> {
        vec!["!".to_string()]
    }

    #[test]
    fn recognises_name_mention_and_prefix() {
        for text in [
            "ferry env staging",
            "@ferry env staging",
            "Ferry: env staging",
            "!env staging",
            "  ferry,  env staging",
        ] {
            assert_eq!(
                strip_address(text, "ferry", &bang()),
                Some("env staging"),
                "{text}"
            );
        }
    }

    #[test]
    fn ignores_other_messages() {
        for text in ["ferrybot env", "deploy staging please", "the ferry is late"] {
            assert_eq!(strip_address(text, "ferry", &bang()), None, "{text}");
        }
    }

    #[test]
    fn shell_lines_work_with_or_without_the_name() {
        assert_eq!(shell_command("ferry envs", "ferry", &bang()), "envs");
        assert_eq!(shell_command("envs", "ferry", &bang()), "envs");
    }
}
