//! Change sets: the key-by-key difference between two documents. Every revision carries the
//! change set that made it, and `diff` shows one between any two documents.

use super::{Document, KeyPath, Name};
use std::collections::BTreeSet;

/// One key that differs; `None` means absent on that side.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Change {
    pub service: Name,
    pub key: KeyPath,
    pub old: Option<String>,
    pub new: Option<String>,
}

impl Change {
    /// `ms-users.version 3.5.6 → 3.5.7`, with `(none)` for an absent side.
    pub fn summary(&self) -> String {
        let side = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_string());
        format!(
            "{}.{} {} → {}",
            self.service,
            self.key,
            side(&self.old),
            side(&self.new)
        )
    }
}

/// Every key whose value differs between `old` and `new`, ordered by service then key. A
/// service present on one side only shows up as its keys appearing or disappearing.
pub fn diff(old: &Document, new: &Document) -> Vec<Change> {
    let services: BTreeSet<&Name> = old.services.keys().chain(new.services.keys()).collect();
    let mut changes = Vec::new();
    for service in services {
        let before = old.services.get(service);
        let after = new.services.get(service);
        let keys: BTreeSet<&KeyPath> = before
            .into_iter()
            .flat_map(|s| s.keys())
            .chain(after.into_iter().flat_map(|s| s.keys()))
            .collect();
        for key in keys {
            let old_value = before.and_then(|s| s.get(key)).cloned();
            let new_value = after.and_then(|s| s.get(key)).cloned();
            if old_value != new_value {
                changes.push(Change {
                    service: service.clone(),
                    key: key.clone(),
                    old: old_value,
                    new: new_value,
                });
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Value;

    fn doc(entries: &[(&str, &str, &str)]) -> Document {
        let mut d = Document::default();
        for (s, k, v) in entries {
            let key = KeyPath::parse(k).unwrap();
            d.set(
                &Name::parse(s).unwrap(),
                &key,
                Value::parse(&key, v).unwrap(),
            );
        }
        d
    }

    #[test]
    fn reports_changed_added_and_removed_keys_in_order() {
        let a = doc(&[
            ("a", "version", "1"),
            ("b", "image", "x"),
            ("b", "version", "2"),
        ]);
        let b = doc(&[
            ("a", "version", "2"),
            ("b", "version", "2"),
            ("c", "version", "9"),
        ]);
        let summaries: Vec<String> = diff(&a, &b).iter().map(Change::summary).collect();
        assert_eq!(
            summaries,
            [
                "a.version 1 → 2",
                "b.image x → (none)",
                "c.version (none) → 9"
            ]
        );
    }

    #[test]
    fn identical_documents_have_no_changes() {
        let a = doc(&[("a", "version", "1")]);
        assert!(diff(&a, &a.clone()).is_empty());
    }
}
