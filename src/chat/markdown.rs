//! Rendering a `Reply` for chat platforms that speak a markdown dialect (Slack's mrkdwn,
//! Discord's markdown), and splitting long text into messages under a platform's limit without
//! ever dropping a line.

use crate::command::{Block, Reply};

/// The differences between the dialects ferry needs.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// Wraps the headline: `*` on Slack, `**` on Discord.
    pub bold: &'static str,
    /// Slack needs `&`, `<` and `>` escaped in text; Discord does not.
    pub escape_angle_brackets: bool,
}

pub const SLACK: Dialect = Dialect {
    bold: "*",
    escape_angle_brackets: true,
};
pub const DISCORD: Dialect = Dialect {
    bold: "**",
    escape_angle_brackets: false,
};

fn escape(text: &str, dialect: Dialect) -> String {
    if dialect.escape_angle_brackets {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    } else {
        text.to_string()
    }
}

/// The reply as one markdown text: bold headline, prose lines, tables in code blocks, commands
/// to type in inline code.
pub fn render(reply: &Reply, dialect: Dialect) -> String {
    let mut out = format!(
        "{b}{}{b}\n",
        escape(&reply.headline, dialect),
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
                flush_code(&mut out, &mut code);
                match other {
                    Block::Text(line) => out.push_str(&format!("{}\n", escape(line, dialect))),
                    Block::Next { label, command } => {
                        out.push_str(&format!("{label}: `{}`\n", command.replace('`', "'")))
                    }
                    Block::Table { .. } | Block::Buttons(_) => {}
                }
            }
        }
    }
    flush_code(&mut out, &mut code);
    out.trim_end().to_string()
}

fn flush_code(out: &mut String, code: &mut String) {
    if !code.is_empty() {
        out.push_str("```\n");
        out.push_str(&code.replace("```", "'''"));
        out.push_str("```\n");
        code.clear();
    }
}

/// Splits `text` into pieces of at most `limit` bytes at line boundaries, closing a code block
/// at the end of a piece and reopening it in the next, and marking continued pieces. A single
/// line longer than the limit is cut into parts; nothing is ever dropped.
pub fn split(text: &str, limit: usize) -> Vec<String> {
    const FENCE: &str = "```";
    let limit = limit.max(64);
    let budget = limit - FENCE.len() - 2;
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
    let total = pieces.len();
    if total > 1 {
        for (i, piece) in pieces.iter_mut().enumerate().skip(1) {
            *piece = format!("({}/{total}) {piece}", i + 1);
        }
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
        assert!(render(&reply, DISCORD).starts_with("**staging@2: a <b> & c**"));
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
