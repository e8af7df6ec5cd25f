//! Rendering a `Reply` for chat platforms that speak a markdown dialect (Slack's mrkdwn,
//! Discord's markdown), escaping everything that came from users so it renders as text (no
//! mention, no link it did not mean), and splitting long text into at most a few messages under
//! a platform's limit; what does not fit is counted and named, never silently dropped.

use crate::command::{Block, Reply};

/// The markup a dialect speaks: what must be escaped differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// mrkdwn: `&`, `<` and `>` are control characters everywhere, code included.
    Slack,
    /// Discord markdown: mentions, masked links and markdown characters in prose.
    Discord,
}

/// The differences between the dialects ferry needs.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// Wraps the headline: `*` on Slack, `**` on Discord.
    pub bold: &'static str,
    pub markup: Markup,
}

pub const SLACK: Dialect = Dialect {
    bold: "*",
    markup: Markup::Slack,
};
pub const DISCORD: Dialect = Dialect {
    bold: "**",
    markup: Markup::Discord,
};

/// At most this many messages carry one reply; the last says what was left out.
pub const MAX_PIECES: usize = 5;

/// Zero-width space: breaks `@everyone` and `@here` without changing what a reader sees.
const ZWSP: char = '\u{200B}';

/// Text that may hold anything a user typed, for prose (headline, lines of text): renders
/// literally. Slack: `&`, `<`, `>` as entities, so `<!channel>`, `<@U1>` and `<https://x|y>`
/// stay text. Discord: `@everyone`/`@here` broken by a zero-width space everywhere; outside
/// inline code `\`, `<` (user, role and channel mentions, `<https://…>`), `[`, `]` (masked
/// links), `*`, `_`, `~` and `|` backslash-escaped. Inline code (where Discord renders no
/// mention, link or markdown) is kept only as a pair of lone backticks around text without
/// one; every other backtick is escaped, so the spans ferry sees are the spans Discord sees.
pub fn escape_text(text: &str, dialect: Dialect) -> String {
    match dialect.markup {
        Markup::Slack => escape_slack(text),
        Markup::Discord => break_everyone(&escape_discord(text)),
    }
}

fn escape_discord(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let lone = |i: usize| {
        chars[i] == '`'
            && (i == 0 || chars[i - 1] != '`')
            && chars.get(i + 1).is_none_or(|c| *c != '`')
    };
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '`' {
            let close = (i + 1..chars.len()).find(|j| chars[*j] == '`');
            match close {
                Some(j) if lone(i) && lone(j) && j > i + 1 => {
                    out.extend(&chars[i..=j]);
                    i = j + 1;
                }
                _ => {
                    out.push_str("\\`");
                    i += 1;
                }
            }
            continue;
        }
        if matches!(c, '\\' | '<' | '[' | ']' | '*' | '_' | '~' | '|') {
            out.push('\\');
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Text inside a code block or inline code: Slack still needs its three entities; Discord
/// renders no mention or link inside code, so only `@everyone`/`@here` are broken (the way out,
/// a fence or a backtick, is neutralised by the caller).
pub fn escape_code(text: &str, dialect: Dialect) -> String {
    match dialect.markup {
        Markup::Slack => escape_slack(text),
        Markup::Discord => break_everyone(text),
    }
}

fn escape_slack(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn break_everyone(text: &str) -> String {
    text.replace("@everyone", &format!("@{ZWSP}everyone"))
        .replace("@here", &format!("@{ZWSP}here"))
}

/// The reply as one markdown text: bold headline, prose lines, tables in code blocks, commands
/// to type in inline code. Every piece of text is escaped for the dialect.
pub fn render(reply: &Reply, dialect: Dialect) -> String {
    let mut out = format!(
        "{b}{}{b}\n",
        escape_text(&reply.headline, dialect),
        b = dialect.bold
    );
    let mut code = String::new();
    for block in &reply.blocks {
        match block {
            Block::Table { header, rows } => code.push_str(&super::text::table(header, rows)),
            Block::Text(line) if line.starts_with("  ") => {
                code.push_str(line);
                code.push('\n');
            }
            other => {
                flush_code(&mut out, &mut code, dialect);
                match other {
                    Block::Text(line) => out.push_str(&format!("{}\n", escape_text(line, dialect))),
                    Block::Next { label, command } => out.push_str(&format!(
                        "{label}: `{}`\n",
                        escape_code(&command.replace('`', "'"), dialect)
                    )),
                    Block::Table { .. } | Block::Buttons(_) => {}
                }
            }
        }
    }
    flush_code(&mut out, &mut code, dialect);
    out.trim_end().to_string()
}

/// `lines` as one code block, escaped for the dialect (deploy progress).
pub fn code_block(lines: &str, dialect: Dialect) -> String {
    let mut out = String::new();
    let mut code = format!("{}\n", lines.trim_end_matches('\n'));
    flush_code(&mut out, &mut code, dialect);
    out.trim_end().to_string()
}

fn flush_code(out: &mut String, code: &mut String, dialect: Dialect) {
    if !code.is_empty() {
        out.push_str("```\n");
        out.push_str(&escape_code(&code.replace("```", "'''"), dialect));
        out.push_str("```\n");
        code.clear();
    }
}

/// Splits `text` into pieces of at most `limit` bytes at line boundaries, closing a code block
/// at the end of a piece and reopening it in the next, and marking continued pieces. A single
/// line longer than the limit is cut into parts; nothing is dropped.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    number(split_raw(text, limit))
}

/// As `split`, but into at most `max` pieces: when the text needs more, it is cut at a line
/// boundary so that it fits, an open code block is closed, and the last piece ends with
/// `more(hidden)`, `hidden` being the number of lines not shown. The one place where a chat
/// reply is cut, for every platform.
pub fn split_capped(
    text: &str,
    limit: usize,
    max: usize,
    more: impl Fn(usize) -> String,
) -> Vec<String> {
    let max = max.max(1);
    let pieces = split_raw(text, limit);
    if pieces.len() <= max {
        return number(pieces);
    }
    let lines: Vec<&str> = text.lines().collect();
    let is_fence = |l: &str| l.trim_start().starts_with("```");
    let cut = |keep: usize| {
        let shown = &lines[..keep];
        let mut head = shown.join("\n");
        if shown.iter().filter(|l| is_fence(l)).count() % 2 == 1 {
            head.push_str("\n```");
        }
        let hidden = lines[keep..].iter().filter(|l| !is_fence(l)).count();
        split_raw(&format!("{head}\n{}", more(hidden)), limit)
    };
    // The most lines that still fit (more lines never need fewer pieces).
    let (mut low, mut high) = (0, lines.len());
    while low < high {
        let mid = (low + high).div_ceil(2);
        if cut(mid).len() <= max {
            low = mid;
        } else {
            high = mid - 1;
        }
    }
    number(cut(low))
}

fn number(mut pieces: Vec<String>) -> Vec<String> {
    let total = pieces.len();
    if total > 1 {
        for (i, piece) in pieces.iter_mut().enumerate().skip(1) {
            *piece = format!("({}/{total}) {piece}", i + 1);
        }
    }
    pieces
}

fn split_raw(text: &str, limit: usize) -> Vec<String> {
    const FENCE: &str = "```";
    let limit = limit.max(64);
    // Room for the fence that closes a piece and the `(i/n) ` mark that opens it.
    let budget = limit - FENCE.len() - 2 - 12;
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut in_code = false;
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while rest.len() > budget - 8 {
            let mut cut = budget - 8;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            lines.push(rest[..cut].to_string());
            rest = &rest[cut..];
        }
        lines.push(rest.to_string());
    }
    for line in lines {
        if current.len() + line.len() + 1 > budget && !current.is_empty() {
            if in_code {
                current.push_str(FENCE);
            }
            pieces.push(std::mem::take(&mut current));
            if in_code {
                current.push_str(FENCE);
                current.push('\n');
            }
        }
        if line.trim_start().starts_with(FENCE) {
            in_code = !in_code;
        }
        current.push_str(&line);
        current.push('\n');
    }
    if !current.trim().is_empty() {
        pieces.push(current.trim_end().to_string());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headline_is_bold_tables_are_code_and_slack_text_is_escaped() {
        let reply = Reply::ok("staging@2: a <b> & c")
            .table(
                &["key", "value"],
                vec![vec!["version".into(), "1.0".into()]],
            )
            .next("Next", "converge staging");
        let slack = render(&reply, SLACK);
        assert!(
            slack.starts_with("*staging@2: a &lt;b&gt; &amp; c*\n```\n"),
            "{slack}"
        );
        assert!(
            slack.contains("  version  1.0\n```\nNext: `converge staging`"),
            "{slack}"
        );
        assert!(render(&reply, DISCORD).starts_with("**staging@2: a \\<b> & c**"));
    }

    #[test]
    fn discord_prose_keeps_clean_code_spans_and_escapes_everything_else() {
        let d = |t: &str| escape_text(t, DISCORD);
        assert_eq!(d("ask for `approve 7`"), "ask for `approve 7`");
        assert_eq!(d("`<@1>` and <@1>"), "`<@1>` and \\<@1>");
        assert_eq!(d("a ``b`` c"), "a \\`\\`b\\`\\` c");
        assert_eq!(d("odd ` one"), "odd \\` one");
        assert_eq!(
            d("\\<@&9> [x](y) *b* _i_ ~s~ |sp|"),
            "\\\\\\<@&9> \\[x\\](y) \\*b\\* \\_i\\_ \\~s\\~ \\|sp\\|"
        );
        assert_eq!(d("@everyone @here"), "@\u{200B}everyone @\u{200B}here");
        assert_eq!(d("`@everyone`"), "`@\u{200B}everyone`");
    }

    #[test]
    fn a_capped_split_keeps_whole_lines_and_names_what_it_left_out() {
        let body: String = (0..500).map(|i| format!("row {i:03}\n")).collect();
        let text = format!("*headline*\n```\n{body}```\nNext: `x`");
        let pieces = split_capped(&text, 500, 3, |n| format!("… {n} more"));
        assert_eq!(pieces.len(), 3);
        for piece in &pieces {
            assert!(piece.len() <= 500, "{}", piece.len());
            assert_eq!(piece.matches("```").count() % 2, 0, "unbalanced: {piece}");
        }
        let last = pieces[2].lines().last().unwrap();
        let shown = pieces.join("\n").matches("row ").count();
        // Every row not shown is counted, and the `Next` line too.
        assert_eq!(last, format!("… {} more", 500 - shown + 1));
        assert!(pieces[2].starts_with("(3/3) "));
        assert_eq!(split_capped("short", 500, 3, |_| unreachable!()), ["short"]);
    }

    #[test]
    fn splitting_keeps_every_line_and_balances_code_blocks() {
        let body: String = (0..300)
            .map(|i| format!("line {i:03} of the table\n"))
            .collect();
        let text = format!("*headline*\n```\n{body}```\nNext: `x`");
        let pieces = split(&text, 2000);
        assert!(pieces.len() > 3);
        for piece in &pieces {
            assert!(piece.len() <= 2000, "{}", piece.len());
            assert_eq!(piece.matches("```").count() % 2, 0, "unbalanced: {piece}");
        }
        let joined = pieces.join("\n");
        for i in 0..300 {
            assert!(
                joined.contains(&format!("line {i:03} of the table")),
                "line {i} lost"
            );
        }
        assert!(pieces[1].starts_with("(2/"));
    }

    #[test]
    fn a_huge_line_is_cut_not_dropped() {
        let text = "x".repeat(5000);
        let pieces = split(&text, 2000);
        let total: usize = pieces
            .iter()
            .map(|p| p.chars().filter(|c| *c == 'x').count())
            .sum();
        assert_eq!(total, 5000);
    }
}
