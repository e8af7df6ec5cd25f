//! A desired-state document: services → keys → values, as one environment's revision holds it.
//! Nested TOML tables in seed files are flattened into dotted key paths.

use super::{KeyPath, Name, Value};
use std::collections::BTreeMap;

/// One service's keys. Ordered so that rendering and diffs are stable.
pub type ServiceSpec = BTreeMap<KeyPath, String>;

/// The desired state of one environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Document {
    pub services: BTreeMap<Name, ServiceSpec>,
}

/// Why a seed document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("expected a [services.<name>] table at the top level, found `{0}`")]
    NotServices(String),
    #[error("{0}")]
    Invalid(String),
}

impl Document {
    pub fn service(&self, name: &Name) -> Option<&ServiceSpec> {
        self.services.get(name)
    }

    pub fn get(&self, service: &Name, key: &KeyPath) -> Option<&str> {
        self.services.get(service)?.get(key).map(String::as_str)
    }

    /// Sets one key, creating the service if needed.
    pub fn set(&mut self, service: &Name, key: &KeyPath, value: Value) {
        self.services
            .entry(service.clone())
            .or_default()
            .insert(key.clone(), value.into_string());
    }

    /// Removes one key, or a whole service when `key` is `None`. Removing a service's last key
    /// keeps the (empty) service: it was not asked to go.
    pub fn unset(&mut self, service: &Name, key: Option<&KeyPath>) {
        match key {
            None => {
                self.services.remove(service);
            }
            Some(key) => {
                if let Some(spec) = self.services.get_mut(service) {
                    spec.remove(key);
                }
            }
        }
    }

    /// Reads a seed file's table `{ services = { name = { key = value, … } } }`. Scalars become
    /// text, nested tables dotted keys; every name and value is validated.
    pub fn from_toml(table: &toml::Table) -> Result<Document, DocumentError> {
        let mut doc = Document::default();
        for (top, value) in table {
            if top != "services" {
                return Err(DocumentError::NotServices(top.clone()));
            }
            let services = value
                .as_table()
                .ok_or_else(|| DocumentError::Invalid("`services` must be a table".into()))?;
            for (service, spec) in services {
                let name = Name::parse(service)
                    .map_err(|e| DocumentError::Invalid(format!("service: {e}")))?;
                let spec = spec.as_table().ok_or_else(|| {
                    DocumentError::Invalid(format!("services.{service} must be a table"))
                })?;
                doc.services.entry(name.clone()).or_default();
                flatten_into(&mut doc, &name, "", spec)?;
            }
        }
        Ok(doc)
    }
}

fn flatten_into(
    doc: &mut Document,
    service: &Name,
    prefix: &str,
    table: &toml::Table,
) -> Result<(), DocumentError> {
    for (key, value) in table {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let text = match value {
            toml::Value::Table(inner) => {
                flatten_into(doc, service, &path, inner)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::Array(_) => {
                return Err(DocumentError::Invalid(format!(
                    "services.{service}.{path}: lists are not supported; use a string"
                )));
            }
        };
        let key = KeyPath::parse(&path)
            .map_err(|e| DocumentError::Invalid(format!("services.{service}: {e}")))?;
        let value = Value::parse(&key, &text)
            .map_err(|e| DocumentError::Invalid(format!("services.{service}.{key}: {e}")))?;
        doc.set(service, &key, value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_tables_flatten_into_dotted_keys() {
        let table: toml::Table = toml::from_str(
            "[services.ms-users]\nversion = \"3.5.6\"\nreplicas = 3\n[services.ms-users.config]\nLOG_LEVEL = \"debug\"\n",
        )
        .unwrap();
        let doc = Document::from_toml(&table).unwrap();
        let users = Name::parse("ms-users").unwrap();
        assert_eq!(doc.get(&users, &KeyPath::version()), Some("3.5.6"));
        assert_eq!(
            doc.get(&users, &KeyPath::parse("replicas").unwrap()),
            Some("3")
        );
        assert_eq!(
            doc.get(&users, &KeyPath::parse("config.LOG_LEVEL").unwrap()),
            Some("debug")
        );
    }

    #[test]
    fn seed_rejects_bad_names_and_other_tables() {
        let bad: toml::Table = toml::from_str("[services.Bad_Name]\nversion = \"1\"\n").unwrap();
        assert!(Document::from_toml(&bad).is_err());
        let other: toml::Table = toml::from_str("[servics.x]\nversion = \"1\"\n").unwrap();
        assert_eq!(
            Document::from_toml(&other),
            Err(DocumentError::NotServices("servics".into()))
        );
    }

    #[test]
    fn unset_removes_a_key_or_a_service() {
        let users = Name::parse("ms-users").unwrap();
        let image = KeyPath::parse("image").unwrap();
        let mut doc = Document::default();
        doc.set(&users, &image, Value::parse(&image, "x").unwrap());
        doc.unset(&users, Some(&image));
        assert_eq!(doc.service(&users).map(|s| s.len()), Some(0));
        doc.unset(&users, None);
        assert!(doc.service(&users).is_none());
    }
}
