//! Small text helpers shared by commands: timestamps and change lists as people read them.

use crate::domain::{Change, Millis};

/// `2026-11-22 04:31 UTC`.
pub fn time(at: Millis) -> String {
    match jiff::Timestamp::from_millisecond(at) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M UTC").to_string(),
        Err(_) => format!("{at}ms"),
    }
}

/// Up to `max` change summaries joined with `; `, then how many more.
pub fn changes(changes: &[Change], max: usize) -> String {
    let mut parts: Vec<String> = changes.iter().take(max).map(Change::summary).collect();
    if changes.len() > max {
        parts.push(format!("and {} more", changes.len() - max));
    }
    parts.join("; ")
}

/// `1.2s`, `350ms`.
pub fn millis(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}
