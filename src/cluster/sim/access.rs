//! Simulated authorization: everything is allowed unless a test removed a right with
//! [`super::SimCluster::deny`]; TokenReview knows the tokens registered with `add_token`.

use std::collections::BTreeMap;

use crate::cluster::{AccessDecision, AccessQuestion, UserInfo};

/// The user name that stands for this service's own SelfSubjectAccessReviews.
pub(crate) const SELF: &str = "self";

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    subject: String,
    group: String,
    resource: String,
    verb: String,
}

/// Deny rules and known tokens.
#[derive(Debug, Clone, Default)]
pub(crate) struct Access {
    denied: Vec<Rule>,
    pub tokens: BTreeMap<String, UserInfo>,
}

/// `*` in a rule matches anything; `*` in a question is only allowed when every value is, so
/// any rule at all matches it.
fn part_matches(rule: &str, asked: &str) -> bool {
    rule == "*" || asked == "*" || rule == asked
}

/// `internal.linstor.linbit.com/*` style resources: `nodes/status` is `nodes` for our purposes.
fn resource_matches(rule: &str, asked: &str) -> bool {
    let base = |r: &str| r.split('/').next().unwrap_or(r).to_string();
    part_matches(&base(rule), &base(asked))
}

impl Access {
    pub fn deny(&mut self, subject: &str, group: &str, resource: &str, verb: &str) {
        self.denied.push(Rule {
            subject: subject.into(),
            group: group.into(),
            resource: resource.into(),
            verb: verb.into(),
        });
    }

    /// Whether `subjects` (a user and its groups) may do what `q` asks.
    pub fn decide(&self, subjects: &[&str], q: &AccessQuestion) -> AccessDecision {
        let hit = self.denied.iter().find(|r| {
            subjects.contains(&r.subject.as_str())
                && part_matches(&r.group, &q.group)
                && resource_matches(&r.resource, &q.resource)
                && part_matches(&r.verb, &q.verb)
        });
        let (allowed, reason) = match hit {
            Some(r) => (
                false,
                format!(
                    "no RBAC rule allows {} on {}/{} for {} (simulated)",
                    r.verb, r.group, r.resource, r.subject
                ),
            ),
            None => (true, "allowed by the simulated cluster's RBAC".to_string()),
        };
        AccessDecision {
            question: q.clone(),
            allowed,
            reason,
        }
    }

    /// Whether a ServiceAccount may do every verb on a resource.
    pub fn service_account_may(
        &self,
        namespace: &str,
        sa: &str,
        group: &str,
        resource: &str,
        verbs: &[&str],
    ) -> Result<(), String> {
        let user = format!("system:serviceaccount:{namespace}:{sa}");
        let sa_group = format!("system:serviceaccounts:{namespace}");
        let subjects = [
            user.as_str(),
            "system:serviceaccounts",
            sa_group.as_str(),
            "system:authenticated",
        ];
        for verb in verbs {
            let d = self.decide(&subjects, &AccessQuestion::new(group, resource, verb, ""));
            if !d.allowed {
                return Err(format!(
                    "User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\" at the cluster scope"
                ));
            }
        }
        Ok(())
    }
}
