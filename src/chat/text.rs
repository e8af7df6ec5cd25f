//! Plain-text rendering of a `Reply`, for the shell and `ferry run`: headline, then detail;
//! tables aligned in columns. Nothing is ever cut: a terminal scrolls and pipes, and nobody
//! else is notified, so unlike chat (at most `markdown::MAX_PIECES` messages) the shell shows
//! every line; it is where a cut chat reply points for the rest.

use crate::command::{Block, Reply};

/// The reply as lines of plain text.
pub fn render(reply: &Reply) -> String {
    let mut out = String::new();
    out.push_str(&reply.headline);
    out.push('\n');
    for block in &reply.blocks {
        match block {
            Block::Text(line) => {
                out.push_str(line);
                out.push('\n');
            }
            Block::Next { label, command } => {
                out.push_str(&format!("{label}: {command}\n"));
            }
            Block::Table { header, rows } => out.push_str(&table(header, rows)),
            // The `Next` line that comes with buttons says what to type.
            Block::Buttons(_) => {}
        }
    }
    out
}

/// A table as aligned columns, each line indented by two spaces.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate().take(columns) {
            if i + 1 == columns {
                text.push_str(cell);
            } else {
                let pad = widths[i] - cell.chars().count();
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str("  ");
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header);
    for row in rows {
        line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_aligned_and_nothing_is_dropped() {
        let reply = Reply::ok("2 environments")
            .table(
                &["env", "rev"],
                vec![
                    vec!["staging".into(), "staging@3".into()],
                    vec!["production".into(), "production@1".into()],
                ],
            )
            .next("Next", "converge staging");
        assert_eq!(
            render(&reply),
            "2 environments\n  env         rev\n  staging     staging@3\n  production  production@1\nNext: converge staging\n"
        );
    }
}
