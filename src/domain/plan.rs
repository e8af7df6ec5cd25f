//! Planning a converge: which services' desired spec differs from what they last ran, and in
//! which waves they deploy. Pure functions of the desired document and the applied state.

use super::{AppliedService, Document, KeyPath, Name, ServiceSpec};
use std::collections::{BTreeMap, BTreeSet};

/// One service to deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStep {
    pub service: Name,
    /// What it runs now (`None`: never deployed by ferry).
    pub from: Option<ServiceSpec>,
    pub to: ServiceSpec,
}

impl PlanStep {
    /// `ms-users 3.5.6 → 3.5.7`, or `ms-users: image changed` when the version is the same.
    pub fn summary(&self) -> String {
        let version =
            |spec: Option<&ServiceSpec>| spec.and_then(|s| s.get(&KeyPath::version())).cloned();
        let (old, new) = (version(self.from.as_ref()), version(Some(&self.to)));
        match (&self.from, old, new) {
            (None, _, Some(new)) => format!("{} (new) → {new}", self.service),
            (Some(_), Some(old), Some(new)) if old != new => {
                format!("{} {old} → {new}", self.service)
            }
            (Some(from), _, _) if from == &self.to => format!("{} (redeploy)", self.service),
            (Some(from), _, _) => {
                let changed: Vec<String> = super::diff(
                    &Document {
                        services: BTreeMap::from([(self.service.clone(), from.clone())]),
                    },
                    &Document {
                        services: BTreeMap::from([(self.service.clone(), self.to.clone())]),
                    },
                )
                .iter()
                .map(|c| c.key.to_string())
                .collect();
                format!("{}: {} changed", self.service, changed.join(", "))
            }
            (None, _, None) => format!("{} (new)", self.service),
        }
    }
}

/// What converge would do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub steps: Vec<PlanStep>,
    /// Services that ran here but are no longer desired; ferry leaves them running.
    pub orphaned: Vec<Name>,
}

impl Plan {
    /// One line per step, as shown to requesters and approvers.
    pub fn text(&self) -> String {
        let lines: Vec<String> = self.steps.iter().map(PlanStep::summary).collect();
        lines.join("\n")
    }

    /// A fingerprint of exactly what the plan deploys (every service's spec before and after):
    /// an approval is bound to it, so two plans that read the same (`image changed`) but
    /// deploy different specs never pass for one another.
    pub fn digest(&self) -> String {
        use sha2::Digest;
        let steps: Vec<(&str, &Option<ServiceSpec>, &ServiceSpec)> = self
            .steps
            .iter()
            .map(|s| (s.service.as_str(), &s.from, &s.to))
            .collect();
        // Serialising maps in key order cannot fail.
        let json = serde_json::to_string(&steps).unwrap_or_default();
        hex::encode(sha2::Sha256::digest(json.as_bytes()))
    }
}

/// Services whose desired spec differs from the applied one (all desired services when
/// `force`), in name order.
pub fn plan(desired: &Document, applied: &[AppliedService], force: bool) -> Plan {
    plan_with(desired, applied, force, &BTreeSet::new())
}

/// As `plan`, also deploying the `unsettled` services: those a failed or interrupted deploy
/// left in an unknown state (the deployer got a new spec, but it never became applied), which
/// must be re-applied even where desired and applied agree.
pub fn plan_with(
    desired: &Document,
    applied: &[AppliedService],
    force: bool,
    unsettled: &BTreeSet<Name>,
) -> Plan {
    let applied: BTreeMap<&Name, &AppliedService> =
        applied.iter().map(|a| (&a.service, a)).collect();
    let steps = desired
        .services
        .iter()
        .filter_map(|(service, spec)| {
            let from = applied.get(service).map(|a| a.spec.clone());
            (force || unsettled.contains(service) || from.as_ref() != Some(spec)).then(|| {
                PlanStep {
                    service: service.clone(),
                    from,
                    to: spec.clone(),
                }
            })
        })
        .collect();
    let orphaned = applied
        .keys()
        .filter(|s| !desired.services.contains_key(**s))
        .map(|s| (*s).clone())
        .collect();
    Plan { steps, orphaned }
}

/// Splits `steps` into waves by `patterns` (`[["db-migrate"], ["ms-*"], ["*"]]`): a service
/// joins the first wave with a matching pattern; services matching none deploy last. Empty
/// waves are dropped. Without patterns everything is one wave.
pub fn waves(steps: Vec<PlanStep>, patterns: &[Vec<String>]) -> Vec<Vec<PlanStep>> {
    let mut waves: Vec<Vec<PlanStep>> = vec![Vec::new(); patterns.len() + 1];
    for step in steps {
        let index = patterns
            .iter()
            .position(|wave| wave.iter().any(|p| matches(p, step.service.as_str())))
            .unwrap_or(patterns.len());
        waves[index].push(step);
    }
    waves.into_iter().filter(|w| !w.is_empty()).collect()
}

/// `*` anywhere in a pattern matches any run of characters.
pub fn matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first)
        || !name[first.len()..].ends_with(last)
        || name.len() < first.len() + last.len()
    {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Value;

    fn doc(entries: &[(&str, &str)]) -> Document {
        let mut d = Document::default();
        for (s, v) in entries {
            d.set(
                &Name::parse(s).unwrap(),
                &KeyPath::version(),
                Value::parse(&KeyPath::version(), v).unwrap(),
            );
        }
        d
    }

    fn applied(d: &Document) -> Vec<AppliedService> {
        d.services
            .iter()
            .map(|(s, spec)| AppliedService {
                service: s.clone(),
                spec: spec.clone(),
                revision: 1,
                deploy_id: 1,
                at: 0,
            })
            .collect()
    }

    #[test]
    fn plans_only_what_differs_unless_forced() {
        let before = doc(&[("a", "1"), ("b", "1")]);
        let after = doc(&[("a", "2"), ("b", "1"), ("c", "1")]);
        let p = plan(&after, &applied(&before), false);
        let names: Vec<&str> = p.steps.iter().map(|s| s.service.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(p.steps[0].summary(), "a 1 → 2");
        assert_eq!(p.steps[1].summary(), "c (new) → 1");
        assert!(plan(&before, &applied(&before), false).steps.is_empty());
        assert_eq!(plan(&before, &applied(&before), true).steps.len(), 2);
        assert_eq!(
            plan(&doc(&[("a", "1")]), &applied(&before), false).orphaned,
            [Name::parse("b").unwrap()]
        );
    }

    #[test]
    fn unsettled_services_are_redeployed() {
        let d = doc(&[("a", "1"), ("b", "1")]);
        let unsettled = BTreeSet::from([Name::parse("b").unwrap()]);
        let p = plan_with(&d, &applied(&d), false, &unsettled);
        assert_eq!(p.steps.len(), 1);
        assert_eq!(p.steps[0].summary(), "b (redeploy)");
    }

    #[test]
    fn waves_follow_patterns_with_the_rest_last() {
        let steps = plan(
            &doc(&[("db-migrate", "1"), ("ms-users", "1"), ("web", "1")]),
            &[],
            false,
        )
        .steps;
        let w = waves(
            steps.clone(),
            &[vec!["db-migrate".into()], vec!["ms-*".into()]],
        );
        let names: Vec<Vec<&str>> = w
            .iter()
            .map(|w| w.iter().map(|s| s.service.as_str()).collect())
            .collect();
        assert_eq!(names, [vec!["db-migrate"], vec!["ms-users"], vec!["web"]]);
        assert_eq!(waves(steps, &[]).len(), 1);
    }

    #[test]
    fn glob_patterns() {
        assert!(matches("*", "anything"));
        assert!(matches("ms-*", "ms-users"));
        assert!(matches("*-api", "users-api"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("ms-*", "web"));
        assert!(!matches("a*a", "a"));
    }
}
